// Package browser runs the TypeScript SDK in a real headless Chromium for tests: Debian's
// chromium as hack/chromium.sh unpacks it into the cache, driven through the DevTools protocol
// (chromedp); a small page (page/) bundled with esbuild from the SDK's browser entry point and
// served on 127.0.0.1; and the page's record of what its client saw (State), read back
// through the protocol.
//
// The page connects to the gateway URL its configuration names, records every push (id and
// position), acks each push that asks for it, and records every connect (server, resume
// status) and disconnect (cause). It handles GOAWAY and resume through the SDK alone: the
// page has no reconnect or resume logic of its own, so what a test sees is the SDK's.
package browser

// Real gateway processes for the end-to-end tests, like test/gwproc does for Go tests: a
// configuration with free loopback ports, an HS256 secret file for JWTs the test signs, the
// binary hack/ts.sh built (TCPGW_TS_BIN_DIR), /readyz awaited with a bounded poll.
import { spawn, execFileSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repoRoot = new URL("../../../../", import.meta.url).pathname;

/** binDir holds gateway, tcpgwctl and kafkatopics: hack/ts.sh builds them, else we do, once. */
let builtDir: string | undefined;
export function binDir(): string {
  const dir = process.env.TCPGW_TS_BIN_DIR;
  if (dir) return dir;
  if (!builtDir) {
    builtDir = mkdtempSync(join(tmpdir(), "tcpgw-ts-bin-"));
    execFileSync("go", ["build", "-o", builtDir + "/", "./cmd/gateway", "./cmd/tcpgwctl", "./hack/kafkatopics"], {
      cwd: repoRoot,
      env: { ...process.env, CGO_ENABLED: "0" },
      stdio: "inherit",
    });
  }
  return builtDir;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** signJwt signs an HS256 JWT for user, expiring in ttlSeconds (exp is required by the gateway). */
export function signJwt(secret: Buffer, user: string, ttlSeconds = 3600, extra: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub: user, iat: now, exp: now + ttlSeconds, ...extra }));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

/** freePort picks a loopback port nothing listens on now (retried by the caller if taken later). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const addr = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return addr.port;
}

export interface GatewayOptions {
  routes?: { service: string; url: string; timeout?: string }[];
  kafka?: { brokers: string[]; downlinkTopic: string; receiptsTopic: string };
  tls?: { certFile: string; keyFile: string };
  limits?: Record<string, unknown>;
  auth?: Record<string, unknown>;
}

export class Gateway {
  readonly dir: string;
  readonly secret = randomBytes(32);
  address = "";
  admin = "";
  private proc: ChildProcess | undefined;
  log = "";

  constructor(readonly opts: GatewayOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "tcpgw-ts-"));
    writeFileSync(join(this.dir, "hs256.secret"), this.secret, { mode: 0o600 });
  }

  token(user: string, ttlSeconds = 3600): string {
    return signJwt(this.secret, user, ttlSeconds);
  }

  /** start starts the process and waits for /readyz; a port taken in between is retried. */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      this.address = `127.0.0.1:${await freePort()}`;
      this.admin = `127.0.0.1:${await freePort()}`;
      const config = {
        serverID: `ts-gw-${attempt}`,
        listen: { clients: this.address, admin: this.admin, control: join(this.dir, "ctl.sock"), ...(this.opts.tls ? { tls: this.opts.tls } : {}) },
        limits: { heartbeatInterval: "1s", ...this.opts.limits },
        auth: { jwt: { hs256SecretFile: join(this.dir, "hs256.secret"), skipIssuerCheck: true, skipAudienceCheck: true }, ...this.opts.auth },
        routes: this.opts.routes ?? [],
        kafka: this.opts.kafka ?? {},
        logging: { level: "debug" },
      };
      const path = join(this.dir, `config.${attempt}.json`);
      writeFileSync(path, JSON.stringify(config)); // JSON is YAML
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(POD_NAME|TCPGW_(SERVER_ID|LISTEN_.*|KAFKA_BROKERS))$/.test(k)));
      this.log = "";
      const proc = spawn(join(binDir(), "gateway"), ["-config", path], { env, stdio: ["ignore", "pipe", "pipe"] });
      this.proc = proc;
      proc.stdout.on("data", (d: Buffer) => (this.log += d.toString()));
      proc.stderr.on("data", (d: Buffer) => (this.log += d.toString()));
      if (await this.waitReady(60_000)) return;
      const taken = this.log.includes("address already in use");
      await this.stop();
      if (!taken) throw new Error(`gateway did not become ready:\n${this.log.slice(-3000)}`);
    }
    throw new Error("gateway: no free ports after 3 attempts");
  }

  private async waitReady(limitMs: number): Promise<boolean> {
    const deadline = Date.now() + limitMs;
    while (Date.now() < deadline) {
      if (this.proc?.exitCode !== null) return false;
      const code = await getStatus(`http://${this.admin}/readyz`);
      if (code === 200) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** stop terminates the gateway (SIGTERM, SIGKILL after 10 s) and removes its files. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGKILL");
      await exited;
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => {
      resolve(0);
    });
    req.on("timeout", () => {
      req.destroy();
      resolve(0);
    });
  });
}

/** Backend is an HTTP backend for a route: it echoes, and answers "slow/<ms>" after that delay. */
export class Backend {
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const method = req.url?.split("/").pop() ?? "";
      const ms = method.startsWith("slow") ? Number(method.slice(4)) : 0;
      setTimeout(() => {
        res.setHeader("X-Tcpgw-Meta-User", String(req.headers["x-tcpgw-user"] ?? ""));
        res.end(Buffer.concat(chunks));
      }, ms);
    });
  });
  url = "";

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** selfSignedCert writes a certificate for 127.0.0.1 and localhost with openssl. */
export function selfSignedCert(dir: string): { certFile: string; keyFile: string; pem: string } {
  const certFile = join(dir, "tls.crt");
  const keyFile = join(dir, "tls.key");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=tcpgateway-test", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", keyFile, "-out", certFile,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  return { certFile, keyFile, pem: readFileSync(certFile, "utf8") };
}

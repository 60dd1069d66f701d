#!/usr/bin/env node
// Validate .glb/.gltf files with the Khronos glTF validator (npm `gltf-validator`, validateBytes).
//   npm install --prefix .node gltf-validator      (tools/test.sh does this when npm is present)
//   NODE_PATH=.node/node_modules node tools/validate_gltf.js anim.glb [more.glb ...]
// Prints one JSON report per file ({file, errors, warnings, infos, hints, messages}); exits 1 when
// any file has an error or a warning.
const fs = require("fs");
const validator = require("gltf-validator");

async function main(paths) {
  let bad = false;
  for (const path of paths) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(path)));
    const i = report.issues;
    console.log(JSON.stringify({file: path, errors: i.numErrors, warnings: i.numWarnings, infos: i.numInfos,
                                hints: i.numHints, messages: i.messages.slice(0, 20)}));
    bad = bad || i.numErrors > 0 || i.numWarnings > 0;
  }
  return bad ? 1 : 0;
}

main(process.argv.slice(2)).then(code => process.exit(code), err => { console.error(String(err)); process.exit(2); });

// Validate kyverno.io/v1 ClusterPolicy documents (a JSON array on stdin) with the validators that
// @kubernetes-models/kyverno generates from Kyverno's CRDs. Prints one line per document: "ok" or
// "invalid <errors>". Run with NODE_PATH=<prefix>/node_modules.
const { ClusterPolicy } = require("@kubernetes-models/kyverno/kyverno.io/v1");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  for (const doc of JSON.parse(input)) {
    if (doc.kind !== "ClusterPolicy") { console.log(`invalid unknown kind ${doc.kind}`); continue; }
    try { new ClusterPolicy(doc).validate(); console.log("ok"); }
    catch (e) { console.log(`invalid ${e.message}`); }
  }
});

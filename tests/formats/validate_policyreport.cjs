// Validate wgpolicyk8s.io/v1alpha2 documents (a JSON array on stdin) with the validators that
// @kubernetes-models/kyverno generates from the PolicyReport / ClusterPolicyReport CRDs.
// Prints one line per document: "ok" or "invalid <errors>". Run with NODE_PATH=<prefix>/node_modules.
const { PolicyReport, ClusterPolicyReport } = require("@kubernetes-models/kyverno/wgpolicyk8s.io/v1alpha2");
const kinds = { PolicyReport, ClusterPolicyReport };
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  for (const doc of JSON.parse(input)) {
    const Model = kinds[doc.kind];
    if (!Model) { console.log(`invalid unknown kind ${doc.kind}`); continue; }
    try { new Model(doc).validate(); console.log("ok"); }
    catch (e) { console.log(`invalid ${e.message}`); }
  }
});

// Validates the Kubernetes manifests of deploy/k8s against the Kubernetes OpenAPI schemas
// (as packaged by the npm package kubernetes-models, pinned by package-lock.json), the way
// kustomize would assemble them. Run by tests/integration/test_deploy.py:
//
//   node tests/k8s/validate.mjs deploy/k8s [--built FILE] [--dump]
//
// 1. kustomization.yaml: a Kustomization whose keys this checker knows, every resource listed
//    exists, no resource sets another namespace.
// 2. Every document of every resource file: apiVersion and kind of a known model, metadata.name,
//    and the model's schema validation (types, required fields, formats).
// 3. --built FILE: the output of `kubectl kustomize DIR` (when kubectl is there): the same
//    validation, each namespaced object in the kustomization's namespace, as many objects as
//    the resource files hold.
// --dump prints the validated documents as one JSON array on stdout (for the test's own checks).
// Exit status 1 with every problem on stderr.

import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const KUSTOMIZATION_KEYS = new Set([
  "apiVersion", "kind", "namespace", "labels", "commonLabels", "commonAnnotations", "resources",
  "images", "namePrefix", "nameSuffix", "patches", "configMapGenerator", "secretGenerator",
  "replicas", "generatorOptions",
]);

const errors = [];
const fail = (where, message) => errors.push(`${where}: ${message}`);

function readDocuments(file) {
  const text = fs.readFileSync(file, "utf8");
  const docs = YAML.parseAllDocuments(text);
  const out = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length) {
      doc.errors.forEach((e) => fail(`${file}#${i}`, `YAML: ${e.message}`));
      return;
    }
    const value = doc.toJS();
    if (value !== null && value !== undefined) {
      out.push({ where: `${file}#${i}`, value });
    }
  });
  return out;
}

async function validate({ where, value }) {
  if (typeof value !== "object" || Array.isArray(value)) {
    fail(where, "not an object");
    return false;
  }
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Za-z]+$/.test(kind) ||
      !/^[a-z0-9.]+(\/[a-z0-9]+)?$/.test(apiVersion)) {
    fail(where, "apiVersion and kind are required");
    return false;
  }
  let Model;
  try {
    Model = (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind];
  } catch {
    fail(where, `unknown kind ${apiVersion} ${kind}`);
    return false;
  }
  if (!value.metadata || typeof value.metadata.name !== "string" || !value.metadata.name) {
    fail(where, `${kind}: metadata.name is required`);
  }
  try {
    new Model(value).validate();
  } catch (e) {
    fail(where, `${kind}/${value.metadata?.name}: ${e.message}`);
    return false;
  }
  return true;
}

async function main() {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith("--") && args[args.indexOf(a) - 1] !== "--built");
  const builtIndex = args.indexOf("--built");
  const built = builtIndex >= 0 ? args[builtIndex + 1] : null;
  const dump = args.includes("--dump");
  if (!dir) {
    console.error("usage: node validate.mjs DIR [--built FILE] [--dump]");
    process.exit(2);
  }
  const kfile = path.join(dir, "kustomization.yaml");
  const [kdoc] = readDocuments(kfile);
  const k = kdoc?.value ?? {};
  if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.kind !== "Kustomization") {
    fail(kfile, "must be apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization");
  }
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(key)) fail(kfile, `unknown key ${key}`);
  }
  if (!Array.isArray(k.resources) || k.resources.length === 0) {
    fail(kfile, "resources must list the manifests");
  }
  const documents = [];
  for (const resource of k.resources ?? []) {
    const file = path.join(dir, resource);
    if (!fs.existsSync(file)) {
      fail(kfile, `resource ${resource} does not exist`);
      continue;
    }
    for (const doc of readDocuments(file)) {
      const ns = doc.value?.metadata?.namespace;
      if (ns && k.namespace && ns !== k.namespace) {
        fail(doc.where, `namespace ${ns} differs from the kustomization's ${k.namespace}`);
      }
      if (await validate(doc)) documents.push(doc.value);
    }
  }
  if (built) {
    const builtDocs = readDocuments(built);
    let valid = 0;
    for (const doc of builtDocs) {
      if (await validate(doc)) valid++;
      const ns = doc.value?.metadata?.namespace;
      if (doc.value?.kind !== "Namespace" && k.namespace && ns !== k.namespace) {
        fail(doc.where, `built object not in namespace ${k.namespace}`);
      }
    }
    if (builtDocs.length !== documents.length) {
      fail(built, `kustomize built ${builtDocs.length} objects, the resources hold ${documents.length}`);
    }
    console.error(`built: ${valid} of ${builtDocs.length} objects valid`);
  }
  if (errors.length) {
    errors.forEach((e) => console.error(e));
    process.exit(1);
  }
  console.error(`${documents.length} objects valid: ` +
    documents.map((d) => `${d.kind}/${d.metadata.name}`).join(", "));
  if (dump) process.stdout.write(JSON.stringify(documents));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});

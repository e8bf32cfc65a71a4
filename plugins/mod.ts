/**
 * The built-in plugins, in load order. Each is written only against `src/plugins/api.ts`.
 * @module
 */
import type { Plugin } from "../src/plugins/api.ts";
import atomicSignatures from "./atomic-signatures/mod.ts";
import attestations from "./attestations/mod.ts";
import cosign from "./cosign/mod.ts";
import notation from "./notation/mod.ts";
import policy from "./policy/mod.ts";
import sbom from "./sbom/mod.ts";

/** Plugins compiled into Wharf. */
export const BUILTIN_PLUGINS: Plugin[] = [
  cosign,
  attestations,
  policy,
  sbom,
  notation,
  atomicSignatures,
];

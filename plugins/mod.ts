/**
 * The built-in plugins, in load order. Each is written only against `src/plugins/api.ts`.
 * @module
 */
import type { Plugin } from "../src/plugins/api.ts";
import attestations from "./attestations/mod.ts";
import cosign from "./cosign/mod.ts";
import policy from "./policy/mod.ts";

/** Plugins compiled into Wharf. */
export const BUILTIN_PLUGINS: Plugin[] = [cosign, attestations, policy];

/**
 * cosign-compatible commands of the `wharf` CLI: `keys generate`, `sign`, `verify`, `attest` and
 * `sbom attach`. They talk to any OCI registry with the same client (and auth flows) as sync.
 * Errors are thrown; `main` turns them into one line on stderr and exit 1.
 * @module
 */
import type { Command } from "commander";
import { credentialsFrom } from "../client/auth.ts";
import { type ImageReference, parseImageReference, repositoryName } from "../client/reference.ts";
import { RegistryClient } from "../client/registry_client.ts";
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  PREDICATE_TYPE_ANNOTATION,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
} from "../cosign/attachments.ts";
import { buildPredicate, buildStatement, predicateTypeUri, signEnvelope } from "../cosign/dsse.ts";
import {
  COSIGN_PRIVATE_KEY_PEM_TYPE,
  decryptPrivateKey,
  generateKeyPair,
  parsePublicKey,
  SIGSTORE_PRIVATE_KEY_PEM_TYPE,
} from "../cosign/keys.ts";
import { buildPayload, type SimpleSigningPayload } from "../cosign/payload.ts";
import { fetchAttachmentLayers, pushAttachment, resolveImage } from "../cosign/remote.ts";
import { type SbomInputFormat, sbomMediaType, type SbomType } from "../cosign/sbom.ts";
import { signPayload } from "../cosign/signature.ts";
import { verifySimpleSigning } from "../cosign/verify.ts";
import { readPassword } from "./password.ts";
import { exists } from "../io/exists.ts";

/** Environment variables holding the private key's passphrase, in order. */
export const PASSPHRASE_ENV = ["WHARF_PASSWORD", "COSIGN_PASSWORD"];

interface RegistryOptions {
  username?: string;
  password?: string;
  insecure?: boolean;
}

/**
 * Adds the cosign commands to `program`.
 *
 * @example
 * ```ts
 * const program = new Command("wharf");
 * registerCosignCommands(program);
 * ```
 */
export function registerCosignCommands(program: Command): void {
  const keys = program.command("keys").description("cosign-compatible key pairs");
  keys.command("generate")
    .description("write PREFIX.key (encrypted, cosign format) and PREFIX.pub")
    .option("--output-prefix <prefix>", "file name prefix", "cosign")
    .option(
      "--pem-type <type>",
      'private key PEM label: "cosign" (read by cosign, skopeo ≥ 1.9, podman ≥ 4.2) or ' +
        '"sigstore" (cosign ≥ 2.0.1 writes it; skopeo ≥ 1.12 reads it)',
      "cosign",
    )
    .option("-f, --force", "overwrite existing files")
    .action(async (options: { outputPrefix: string; pemType: string; force?: boolean }) => {
      const pemTypes = {
        cosign: COSIGN_PRIVATE_KEY_PEM_TYPE,
        sigstore: SIGSTORE_PRIVATE_KEY_PEM_TYPE,
      } as const;
      const pemType = pemTypes[options.pemType as keyof typeof pemTypes];
      if (!pemType) throw new Error(`--pem-type must be "cosign" or "sigstore"`);
      const keyPath = `${options.outputPrefix}.key`;
      const pubPath = `${options.outputPrefix}.pub`;
      if (!options.force) {
        for (const path of [keyPath, pubPath]) {
          if (await exists(path)) throw new Error(`${path} exists; pass --force to overwrite`);
        }
      }
      const password = await newPassphrase();
      const pair = generateKeyPair(password, { pemType });
      await Deno.writeTextFile(keyPath, pair.privateKeyPem, { mode: 0o600 });
      await Deno.writeTextFile(pubPath, pair.publicKeyPem, { mode: 0o644 });
      console.error(`Private key written to ${keyPath}\nPublic key written to ${pubPath}`);
    });

  registryOptions(program.command("sign"))
    .description("sign an image with a cosign key and push the signature (sha256-<hex>.sig)")
    .argument("<image>", "REGISTRY/REPOSITORY:TAG or …@DIGEST")
    .requiredOption("--key <file>", "encrypted private key (cosign.key)")
    .option("--referrers", "store the signature as an OCI 1.1 referrer instead of a tag")
    .option("-a, --annotation <key=value>", "claim to add to the payload", collect, [])
    .option("--identity <repository>", "docker-reference to sign (default: the image's)")
    .action(async (image: string, options: SignOptions) => {
      const ref = parseImageReference(image);
      const key = decryptPrivateKey(await Deno.readTextFile(options.key), await passphrase());
      const client = clientFor(ref, options);
      const subject = await resolveImage(client, ref);
      const payload = buildPayload({
        dockerReference: options.identity ?? repositoryName(ref),
        manifestDigest: subject.digest,
        optional: annotations(options.annotation),
      });
      const pushed = await pushAttachment(client, ref.repository, subject, "sig", [{
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        bytes: payload,
        annotations: { [SIGNATURE_ANNOTATION]: signPayload(key, payload) },
      }], { referrers: options.referrers });
      console.log(`Pushed signature to ${pushedName(ref, pushed.reference)}`);
    });

  registryOptions(program.command("artifacts"))
    .description("list the signatures, attestations and SBOMs a Wharf indexed for an image")
    .argument("<image>", "REGISTRY/REPOSITORY:TAG or …@DIGEST (on a Wharf registry)")
    .option("--json", "print the registry's answer as JSON")
    .action(async (image: string, options: RegistryOptions & { json?: boolean }) => {
      const ref = parseImageReference(image);
      const client = clientFor(ref, options);
      const subject = await resolveImage(client, ref);
      const answer = await client.getJson(
        ref.repository,
        `/wharf/v1/${ref.repository}/artifacts/${subject.digest}`,
      ) as { artifacts: ArtifactRow[] };
      if (options.json) return console.log(JSON.stringify(answer, null, 2));
      console.log(`${repositoryName(ref)}@${subject.digest}`);
      if (answer.artifacts.length === 0) console.log("  no signatures, attestations or SBOMs");
      for (const a of answer.artifacts) {
        const keys = Array.isArray(a.detail?.keys) && a.detail.keys.length
          ? ` keys=${a.detail.keys.join(",")}`
          : a.detail?.key
          ? ` key=${a.detail.key}`
          : "";
        const reason = a.status !== "verified" && a.detail?.reason ? ` (${a.detail.reason})` : "";
        console.log(
          `  ${a.kind.padEnd(12)} ${a.status.padEnd(12)} ${a.type}  ${a.digest}${keys}${reason}`,
        );
      }
    });

  registryOptions(program.command("verify"))
    .description("verify an image's cosign signatures with a public key; print the payloads")
    .argument("<image>", "REGISTRY/REPOSITORY:TAG or …@DIGEST")
    .requiredOption("--key <file>", "public key (cosign.pub)")
    .option("-a, --annotation <key=value>", "claim the payload must carry", collect, [])
    .action(async (image: string, options: VerifyOptions) => {
      const ref = parseImageReference(image);
      const publicKey = parsePublicKey(await Deno.readTextFile(options.key));
      const client = clientFor(ref, options);
      const subject = await resolveImage(client, ref);
      const layers = await fetchAttachmentLayers(client, ref.repository, subject.digest, "sig");
      if (layers.length === 0) throw new Error(`no signatures found for ${image}`);
      const verified: SimpleSigningPayload[] = [];
      const reasons: string[] = [];
      for (const layer of layers) {
        const result = verifySimpleSigning(
          layer.bytes,
          layer.descriptor.annotations?.[SIGNATURE_ANNOTATION],
          publicKey,
          { imageDigest: subject.digest, annotations: annotations(options.annotation) },
        );
        if (result.ok) verified.push(result.payload);
        else reasons.push(`${layer.source}: ${result.reason}`);
      }
      if (verified.length === 0) {
        throw new Error(`no signature of ${image} verifies: ${reasons.join("; ")}`);
      }
      console.error(
        `Verification for ${repositoryName(ref)}@${subject.digest} --\n` +
          "The following checks were performed on each of these signatures:\n" +
          "  - The cosign claims were validated\n" +
          "  - The signatures were verified against the specified public key",
      );
      console.log(JSON.stringify(verified));
    });

  registryOptions(program.command("attest"))
    .description("sign an in-toto attestation (DSSE) for an image and push it (sha256-<hex>.att)")
    .argument("<image>", "REGISTRY/REPOSITORY:TAG or …@DIGEST")
    .requiredOption("--key <file>", "encrypted private key (cosign.key)")
    .requiredOption("--predicate <file>", "predicate file")
    .option(
      "--type <type>",
      "predicate type: a URI or custom, slsaprovenance, spdxjson, …",
      "custom",
    )
    .option("--referrers", "store the attestation as an OCI 1.1 referrer instead of a tag")
    .action(async (image: string, options: AttestOptions) => {
      const ref = parseImageReference(image);
      const predicateType = predicateTypeUri(options.type);
      const predicate = buildPredicate(options.type, await Deno.readFile(options.predicate));
      const key = decryptPrivateKey(await Deno.readTextFile(options.key), await passphrase());
      const client = clientFor(ref, options);
      const subject = await resolveImage(client, ref);
      const statement = buildStatement(
        predicateType,
        predicate,
        repositoryName(ref),
        subject.digest,
      );
      const envelope = signEnvelope(key, new TextEncoder().encode(JSON.stringify(statement)));
      const pushed = await pushAttachment(client, ref.repository, subject, "att", [{
        mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
        bytes: envelope,
        annotations: { [SIGNATURE_ANNOTATION]: "", [PREDICATE_TYPE_ANNOTATION]: predicateType },
      }], { referrers: options.referrers });
      console.log(`Pushed attestation to ${pushedName(ref, pushed.reference)}`);
    });

  const sbom = program.command("sbom").description("software bills of materials");
  registryOptions(sbom.command("attach"))
    .description("attach an SPDX/CycloneDX/syft SBOM to an image (sha256-<hex>.sbom)")
    .argument("<file>", "SBOM file")
    .argument("<image>", "REGISTRY/REPOSITORY:TAG or …@DIGEST")
    .option("--type <type>", "spdx, cyclonedx or syft (default: from the content)")
    .option("--input-format <format>", "json, xml or text (default: from the content)")
    .option("--referrers", "store the SBOM as an OCI 1.1 referrer instead of a tag")
    .action(async (file: string, image: string, options: SbomOptions) => {
      if (options.type && !["spdx", "cyclonedx", "syft"].includes(options.type)) {
        throw new Error(`--type must be spdx, cyclonedx or syft`);
      }
      if (options.inputFormat && !["json", "xml", "text"].includes(options.inputFormat)) {
        throw new Error(`--input-format must be json, xml or text`);
      }
      const ref = parseImageReference(image);
      const bytes = await Deno.readFile(file);
      const mediaType = sbomMediaType(bytes, options.type, options.inputFormat);
      const client = clientFor(ref, options);
      const subject = await resolveImage(client, ref);
      const pushed = await pushAttachment(client, ref.repository, subject, "sbom", [
        { mediaType, bytes },
      ], { referrers: options.referrers, append: false });
      console.log(`Pushed SBOM (${mediaType}) to ${pushedName(ref, pushed.reference)}`);
    });
}

interface SignOptions extends RegistryOptions {
  key: string;
  referrers?: boolean;
  annotation: string[];
  identity?: string;
}

interface VerifyOptions extends RegistryOptions {
  key: string;
  annotation: string[];
}

interface AttestOptions extends RegistryOptions {
  key: string;
  predicate: string;
  type: string;
  referrers?: boolean;
}

interface SbomOptions extends RegistryOptions {
  type?: SbomType;
  inputFormat?: SbomInputFormat;
  referrers?: boolean;
}

interface ArtifactRow {
  kind: string;
  type: string;
  status: string;
  digest: string;
  detail?: { keys?: string[]; key?: string; reason?: string };
}

function registryOptions(command: Command): Command {
  return command
    .option("-u, --username <name>", "registry user (or WHARF_REGISTRY_USERNAME)")
    .option("-p, --password <password>", "registry password (or WHARF_REGISTRY_PASSWORD)")
    .option("--insecure", "use plain HTTP (loopback registries always do)");
}

function clientFor(ref: ImageReference, options: RegistryOptions): RegistryClient {
  return new RegistryClient({
    registry: ref.registry,
    credentials: credentialsFrom(options),
    insecure: options.insecure,
    userAgent: "wharf-cli",
  });
}

function pushedName(ref: ImageReference, reference: string): string {
  return `${repositoryName(ref)}${reference.includes(":") ? "@" : ":"}${reference}`;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function annotations(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`annotation "${pair}" is not key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

async function passphrase(): Promise<string> {
  return await readPassword(PASSPHRASE_ENV, "Enter password for private key: ");
}

async function newPassphrase(): Promise<string> {
  const password = await passphrase();
  const fromEnv = PASSPHRASE_ENV.some((name) => Deno.env.get(name) !== undefined);
  if (!fromEnv && Deno.stdin.isTerminal()) {
    const again = await readPassword([], "Enter password for private key again: ");
    if (again !== password) throw new Error("passwords do not match");
  }
  return password;
}

/** Writes src/generated/openapi.d.ts from a running service: ORCHESTRATOR_URL, ORCHESTRATOR_API_TOKEN. */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { fetchDocument, GENERATED, typesOf } from "./openapi.js";

const url = process.env.ORCHESTRATOR_URL ?? "http://127.0.0.1:3020";
const root = fileURLToPath(new URL("../../", import.meta.url)); // .test-build/tools/ -> the package
const types = await typesOf(await fetchDocument(url, process.env.ORCHESTRATOR_API_TOKEN));
await writeFile(root + GENERATED, types);
console.log(`${GENERATED} written from ${url}/openapi.json`);

// Types for gen-api.mjs, which the drift test imports.

/** Absolute path of crates/api/openapi.json. */
export const DOCUMENT: string;
/** Absolute path of src/api/schema.gen.ts. */
export const OUTPUT: string;
/** The TypeScript for the document's current text. */
export function generate(): Promise<string>;

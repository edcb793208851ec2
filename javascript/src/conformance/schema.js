// A small JSON Schema validator: only the keywords conformance/schema.json
// uses (the same set as the Python runner's). An unknown keyword is an error
// so that the schema cannot silently say more than is checked, and the
// package needs no JSON Schema dependency.

/** A conformance file is malformed: the suite refuses to run rather than guess. */
export class VectorFileError extends Error {
  name = "VectorFileError";
}

/**
 * A value, shortened for a message.
 * @param {unknown} v
 * @param {number} [n]
 */
export function short(v, n = 60) {
  const text = JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x)) ?? String(v);
  return text.length <= n ? text : text.slice(0, n) + "...";
}

const IGNORED = new Set(["$schema", "$id", "$comment", "title", "description", "examples", "default"]);
const KEYWORDS = new Set(["$ref", "$defs", "type", "const", "enum", "pattern", "minimum", "minItems",
  "items", "required", "properties", "additionalProperties", "oneOf"]);

/**
 * @param {unknown} v
 * @param {string} name a JSON Schema type
 */
function isType(v, name) {
  switch (name) {
    case "integer":
      return Number.isInteger(v);
    case "number":
      return typeof v === "number";
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    case "array":
      return Array.isArray(v);
    case "null":
      return v === null;
    default:
      return typeof v === name; // string, boolean
  }
}

/** @param {unknown} a @param {unknown} b JSON values equal (for const and enum) */
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Throw VectorFileError at the first place value breaks schema.
 * @param {any} value
 * @param {Record<string, any>} schema
 * @param {Record<string, any>} root the document holding $defs
 * @param {string} [where]
 */
export function validate(value, schema, root, where = "$") {
  if ("$ref" in schema) {
    const ref = schema.$ref;
    if (!ref.startsWith("#/$defs/")) throw new VectorFileError(`schema: unsupported $ref ${ref}`);
    validate(value, root.$defs[ref.slice("#/$defs/".length)], root, where);
  }
  for (const kw of Object.keys(schema)) {
    if (!IGNORED.has(kw) && !KEYWORDS.has(kw)) throw new VectorFileError(`schema: unsupported keyword ${kw}`);
  }
  if ("type" in schema) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((/** @type {string} */ t) => isType(value, t))) {
      throw new VectorFileError(`${where}: expected ${types.join(" or ")}, got ${short(value)}`);
    }
  }
  if ("const" in schema && !same(value, schema.const)) {
    throw new VectorFileError(`${where}: must be ${short(schema.const)}`);
  }
  if ("enum" in schema && !schema.enum.some((/** @type {unknown} */ e) => same(e, value))) {
    throw new VectorFileError(`${where}: must be one of ${short(schema.enum)}, got ${short(value)}`);
  }
  if ("pattern" in schema && typeof value === "string" && !new RegExp(schema.pattern, "u").test(value)) {
    throw new VectorFileError(`${where}: ${short(value)} does not match ${schema.pattern}`);
  }
  if ("minimum" in schema && typeof value === "number" && value < schema.minimum) {
    throw new VectorFileError(`${where}: must be >= ${schema.minimum}`);
  }
  if ("minItems" in schema && Array.isArray(value) && value.length < schema.minItems) {
    throw new VectorFileError(`${where}: needs at least ${schema.minItems} items`);
  }
  if (Array.isArray(value) && "items" in schema) {
    value.forEach((item, i) => validate(item, schema.items, root, `${where}[${i}]`));
  }
  if (isType(value, "object")) {
    for (const name of schema.required ?? []) {
      if (!Object.hasOwn(value, name)) throw new VectorFileError(`${where}: missing ${JSON.stringify(name)}`);
    }
    const props = schema.properties ?? {};
    const extra = schema.additionalProperties ?? true;
    for (const [k, v] of Object.entries(value)) {
      if (Object.hasOwn(props, k)) {
        validate(v, props[k], root, `${where}.${k}`);
      } else if (extra === false) {
        throw new VectorFileError(
          `${where}: unexpected ${JSON.stringify(k)} (allowed: ${Object.keys(props).join(", ")})`,
        );
      } else if (typeof extra === "object") {
        validate(v, extra, root, `${where}.${k}`);
      }
    }
  }
  if ("oneOf" in schema) {
    /** @type {string[]} */
    const errors = [];
    schema.oneOf.forEach((/** @type {Record<string, any>} */ alt, /** @type {number} */ i) => {
      try {
        validate(value, alt, root, where);
      } catch (exc) {
        if (!(exc instanceof VectorFileError)) throw exc;
        errors.push(`  option ${i + 1}: ${exc.message}`);
      }
    });
    if (errors.length !== schema.oneOf.length - 1) {
      const why = errors.length === schema.oneOf.length ? "no" : "more than one";
      throw new VectorFileError(`${where}: matches ${why} form:\n${errors.join("\n")}`);
    }
  }
}

// Generates src/api.gen.ts, the TypeScript types of the API's JSON, from docs/openapi.json (whose
// schemas are themselves derived from the server's Rust types). `--check` fails when the
// committed file is stale, so the UI cannot drift from the server.
//
// Why not openapi-typescript: it needs TypeScript 5's compiler API, and this project builds with
// TypeScript 7. The document uses a small part of JSON Schema (objects, arrays, `$ref`, unions of
// types, `const`/`enum`, `oneOf`/`anyOf`, `additionalProperties`); this handles exactly that and
// fails loudly on anything else.

import { readFileSync, writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const documentPath = join(here, '..', '..', '..', 'docs', 'openapi.json');
const outputPath = join(here, '..', 'src', 'api.gen.ts');

const REF = '#/components/schemas/';
const SCALARS = { string: 'string', integer: 'number', number: 'number', boolean: 'boolean', null: 'null' };

function fail(path, message) {
  throw new Error(`${path}: ${message}`);
}

function literal(value) {
  return JSON.stringify(value);
}

function comment(text, indent) {
  if (!text) return '';
  const lines = text.replaceAll('*/', '*\\/').split('\n');
  return `${indent}/** ${lines.join(`\n${indent} * `)} */\n`;
}

function union(parts) {
  const unique = [...new Set(parts)];
  return unique.length === 1 ? unique[0] : unique.map((p) => (p.includes(' & ') ? `(${p})` : p)).join(' | ');
}

/** The TypeScript type of `schema`, found at `path` (for errors). */
function typeOf(schema, path, indent) {
  if (schema === true || (typeof schema === 'object' && Object.keys(schema).length === 0)) return 'unknown';
  if (typeof schema !== 'object' || schema === null) fail(path, 'not a schema');
  const known = new Set([
    'type',
    'properties',
    'required',
    'items',
    'additionalProperties',
    '$ref',
    'oneOf',
    'anyOf',
    'const',
    'enum',
    'description',
    'format',
    'minimum',
    'maximum',
    'minLength',
    'maxLength',
    'minItems',
    'maxItems',
    'pattern',
    'examples',
    'maxProperties',
    // Cross-field rules (`if`/`then`/`else`) do not change the shape: the server checks them.
    'if',
    'then',
    'else',
    'minProperties',
    'default',
    'contentEncoding',
    'title',
  ]);
  for (const key of Object.keys(schema)) if (!known.has(key)) fail(path, `unsupported keyword \`${key}\``);
  const parts = [];
  if (schema.$ref) {
    if (!schema.$ref.startsWith(REF)) fail(path, `unsupported $ref ${schema.$ref}`);
    parts.push(schema.$ref.slice(REF.length));
  }
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) {
    const rest = { ...schema };
    delete rest.oneOf;
    delete rest.anyOf;
    delete rest.description;
    const base = Object.keys(rest).length ? typeOf(rest, path, indent) : null;
    const each = alternatives.map((alt, i) => typeOf(alt, `${path}/${i}`, indent));
    const joined = union(each);
    return base ? `${base} & (${joined})` : joined;
  }
  if ('const' in schema) return literal(schema.const);
  if (schema.enum) return union(schema.enum.map(literal));
  const types = schema.type === undefined ? [] : [schema.type].flat();
  if (schema.$ref && (schema.properties || types.includes('object'))) {
    // A reference extended in place (an internally tagged variant): both at once.
    return `${parts[0]} & ${objectType(schema, path, indent)}`;
  }
  for (const t of types) {
    if (t === 'object') parts.push(objectType(schema, path, indent));
    else if (t === 'array') {
      const item = schema.items ? typeOf(schema.items, `${path}/items`, indent) : 'unknown';
      parts.push(/[ |&]/.test(item) ? `(${item})[]` : `${item}[]`);
    } else if (SCALARS[t]) parts.push(SCALARS[t]);
    else fail(path, `unsupported type ${t}`);
  }
  if (parts.length === 0) {
    if (schema.properties) return objectType(schema, path, indent);
    // Only annotations (a description, say): any JSON.
    return 'unknown';
  }
  return union(parts);
}

function objectType(schema, path, indent) {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const inner = `${indent}  `;
  const fields = Object.keys(properties).map((name) => {
    const property = properties[name];
    const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : literal(name);
    const optional = required.has(name) ? '' : '?';
    return `${comment(property.description, inner)}${inner}${key}${optional}: ${typeOf(property, `${path}/${name}`, inner)};`;
  });
  const extra = schema.additionalProperties;
  if (extra !== undefined && extra !== false) {
    const value = extra === true ? 'unknown' : typeOf(extra, `${path}/additionalProperties`, inner);
    if (fields.length === 0) return `Record<string, ${value}>`;
    fields.push(`${inner}[field: string]: ${value === 'unknown' ? 'unknown' : `${value} | undefined`};`);
  }
  if (fields.length === 0) return extra === false ? 'Record<string, never>' : 'Record<string, unknown>';
  return `{\n${fields.join('\n')}\n${indent}}`;
}

export function generate(document) {
  const schemas = document.components?.schemas ?? {};
  const out = [
    '// Generated by scripts/api-types.mjs from docs/openapi.json: do not edit.',
    '// `npm run gen:api` rewrites it; `npm run check:api` (part of the tests) fails when it is stale.',
    '',
  ];
  for (const name of Object.keys(schemas).sort()) {
    const schema = schemas[name];
    out.push(`${comment(schema.description, '')}export type ${name} = ${typeOf(schema, name, '')};`, '');
  }
  return out.join('\n');
}

const options = { ...(await resolveConfig(outputPath)), filepath: outputPath };
const text = await format(generate(JSON.parse(readFileSync(documentPath, 'utf8'))), options);
if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(outputPath, 'utf8');
  } catch {
    // missing: stale
  }
  if (committed !== text) {
    console.error('src/api.gen.ts is stale: run `npm run gen:api` in ui/web and commit the result');
    process.exit(1);
  }
  console.log('src/api.gen.ts matches docs/openapi.json');
} else {
  writeFileSync(outputPath, text);
  console.log(`wrote ${outputPath}`);
}

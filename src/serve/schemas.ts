/**
 * JSON schemas shared by several protocols and routes (registered once with `app.addSchema` where
 * they carry an `$id`). A protocol's own request and response schemas live in its module.
 */

export const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

export const nameVersionParams = {
  type: 'object',
  required: ['name', 'version'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 128 }, version: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

/** The query every forecast endpoint accepts. */
export const forecastQuerySchema = {
  type: 'object',
  properties: {
    version: { type: 'string', minLength: 1, maxLength: 128, description: 'Model version (default: the newest).' },
    replace: {
      type: 'string',
      enum: ['true', 'false', '1', '0'],
      description: 'Replace stored bars whose values differ (default false: such a bar is a 409 conflict).',
    },
  },
  additionalProperties: false,
} as const;

export interface ForecastQuery {
  version?: string;
  replace?: 'true' | 'false' | '1' | '0';
  model?: string;
}

export function wantsReplace(q: ForecastQuery | undefined): boolean {
  return q?.replace === 'true' || q?.replace === '1';
}

/** Security requirement of keyed routes in the OpenAPI document. */
export const apiKeySecurity = [{ apiKey: [] }];

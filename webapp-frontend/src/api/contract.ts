// Generated from webapp-backend/lookalike_web/contract.py: do not edit. Regenerate with
// .venv/bin/python -m lookalike_web.contract > webapp-frontend/src/api/contract.ts

/** Most bytes of a photo sent to the server in one upload. */
export const MAX_UPLOAD_BYTES = 15728640;

/** Every `error.code` the API answers with, and its HTTP status. */
export const ERROR_STATUS = {
  bad_request: 400,
  missing_image: 400,
  empty_file: 400,
  bad_parameter: 400,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  not_an_image: 415,
  unsupported_image: 415,
  no_face: 422,
  corrupt_image: 422,
  cannot_explain: 422,
  internal_error: 500,
  busy: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

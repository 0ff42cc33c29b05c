'use strict';
// The local archive's S3 store: s3rver's request handler behind an access check.
//
//   node s3front.js S3RVER_PACKAGE_DIR   (configuration as one JSON object on stdin)
//
// stdin: {directory, address, port, bucket, accessKeyId, secretAccessKey,
//         embargoed: [keys, and prefixes ending in "/"]}; the secret never touches disk.
//
// Anonymous callers may GET/HEAD (OPTIONS) objects that are not embargoed, like the public
// bucket; everything else (writes, multipart, ACL/policy/tagging, listing, embargoed keys)
// needs an AWS Signature Version 4 (Authorization header or presigned query) made with the
// archive's credentials, verified here, and is refused with S3's XML errors otherwise.

const crypto = require('crypto');
const http = require('http');
const path = require('path');

const s3rverDir = process.argv[2];
const S3rver = require(s3rverDir);
const S3Error = require(path.join(s3rverDir, 'lib', 'models', 'error'));
const AWSAccount = require(path.join(s3rverDir, 'lib', 'models', 'account'));

const MAX_SKEW_MS = 15 * 60 * 1000; // S3's limit for header-signed requests
const MAX_PRESIGN_SECONDS = 604800; // S3's limit for presigned URLs: a week
// Object query parameters an anonymous reader may send (SDKs add x-id; the rest only shape
// the response); any other one names a subresource (acl, tagging, uploads, ...).
const ANONYMOUS_QUERY = /^(x-id|versionId|partNumber|response-[a-z-]+)$/;

function accessDenied(message = 'Access Denied') {
  return new S3Error('AccessDenied', message);
}

// RFC 3986 encoding, as SigV4 canonicalisation wants it (encodeURIComponent leaves !'()*).
function uriEncode(text) {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    ch => '%' + ch.charCodeAt(0).toString(16).toUpperCase(),
  );
}

function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch (err) {
    throw new S3Error('InvalidURI', "Couldn't parse the specified URI.");
  }
}

// The raw query as [name, value] pairs, decoded, in order ('+' stays '+': SigV4 clients
// encode spaces as %20, so a literal '+' is a '+').
function queryPairs(rawQuery) {
  if (!rawQuery) return [];
  return rawQuery
    .split('&')
    .filter(part => part !== '')
    .map(part => {
      const at = part.indexOf('=');
      return at < 0
        ? [decode(part), '']
        : [decode(part.slice(0, at)), decode(part.slice(at + 1))];
    });
}

function hmac(key, text) {
  return crypto.createHmac('sha256', key).update(text, 'utf8').digest();
}

function sha256Hex(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function parseAmzDate(text) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text || '');
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

function sameSignature(given, expected) {
  const a = Buffer.from(String(given), 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

// Verify a SigV4-signed request against our one credential; throws an S3Error if it is not.
// ``url`` is the request's URL as sent (s3rver's vhost middleware rewrites req.url).
function verifySignature(req, url, config) {
  const [rawPath, rawQuery = ''] = url.split(/\?(.*)/s);
  const pairs = queryPairs(rawQuery);
  const query = new Map(pairs);
  const presigned = query.has('X-Amz-Algorithm');
  let credential, signedHeaders, signature, amzDate, payloadHash;
  if (presigned) {
    if (query.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') {
      throw new S3Error(
        'AuthorizationQueryParametersError',
        'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
      );
    }
    credential = query.get('X-Amz-Credential');
    signedHeaders = query.get('X-Amz-SignedHeaders');
    signature = query.get('X-Amz-Signature');
    amzDate = query.get('X-Amz-Date');
    payloadHash = 'UNSIGNED-PAYLOAD';
    const expires = Number(query.get('X-Amz-Expires'));
    if (!credential || !signedHeaders || !signature || !amzDate || !query.has('X-Amz-Expires')) {
      throw new S3Error(
        'AuthorizationQueryParametersError',
        'Query-string authentication version 4 requires the X-Amz-Algorithm, ' +
          'X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, ' +
          'and X-Amz-Expires parameters.',
      );
    }
    if (!Number.isInteger(expires) || expires < 0 || expires > MAX_PRESIGN_SECONDS) {
      throw new S3Error(
        'AuthorizationQueryParametersError',
        'X-Amz-Expires must be a whole number of seconds from 0 to 604800',
      );
    }
    const signedAt = parseAmzDate(amzDate);
    if (isNaN(signedAt)) throw accessDenied('X-Amz-Date is not yyyyMMddTHHmmssZ');
    if (signedAt - Date.now() > MAX_SKEW_MS) throw accessDenied('Request is not yet valid');
    if (Date.now() > signedAt + expires * 1000) throw accessDenied('Request has expired');
  } else {
    const header = req.headers['authorization'] || '';
    const m = /^AWS4-HMAC-SHA256 +Credential=([^,\s]+), *SignedHeaders=([^,\s]+), *Signature=([0-9a-f]+)$/.exec(
      header.trim(),
    );
    if (!m) {
      throw accessDenied('Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is accepted');
    }
    [, credential, signedHeaders, signature] = m;
    amzDate = req.headers['x-amz-date'];
    payloadHash = req.headers['x-amz-content-sha256'];
    if (!payloadHash) {
      throw new S3Error(
        'InvalidRequest',
        'Missing required header for this request: x-amz-content-sha256',
      );
    }
    const signedAt = parseAmzDate(amzDate);
    if (isNaN(signedAt)) throw accessDenied('AWS authentication requires a valid x-amz-date header');
    if (Math.abs(Date.now() - signedAt) > MAX_SKEW_MS) {
      throw new S3Error(
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    }
  }
  const [accessKeyId, day, region, service, terminator, ...extra] = credential.split('/');
  if (accessKeyId !== config.accessKeyId) {
    throw new S3Error(
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
    );
  }
  if (extra.length || service !== 's3' || terminator !== 'aws4_request' || day !== amzDate.slice(0, 8)) {
    throw accessDenied('The credential scope is malformed');
  }
  const headerNames = signedHeaders.split(';');
  if (!headerNames.includes('host')) throw accessDenied('The host header must be signed');
  const canonicalHeaders = headerNames
    .map(name => {
      const value = req.headers[name];
      if (value === undefined) throw accessDenied(`Signed header ${name} is missing`);
      const joined = Array.isArray(value) ? value.join(',') : String(value);
      return `${name}:${joined.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalQuery = pairs
    .filter(([name]) => !(presigned && name === 'X-Amz-Signature'))
    .map(([name, value]) => [uriEncode(name), uriEncode(value)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalUri = rawPath
    .split('/')
    .map(segment => uriEncode(decode(segment)))
    .join('/');
  const canonicalRequest = [
    req.method,
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/${terminator}`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key = hmac('AWS4' + config.secretAccessKey, day);
  for (const part of [region, service, terminator]) key = hmac(key, part);
  const expected = hmac(key, stringToSign).toString('hex');
  if (!sameSignature(signature, expected)) {
    throw new S3Error(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );
  }
}

function isEmbargoed(key, embargoed) {
  if (embargoed.has(key)) return true;
  // every ancestor prefix ("zarr/", "zarr/<id>/", ...) of the key
  for (let at = key.indexOf('/'); at >= 0; at = key.indexOf('/', at + 1)) {
    if (embargoed.has(key.slice(0, at + 1))) return true;
  }
  return false;
}

// Anonymous requests: reads of objects that are not embargoed, nothing else.
function checkAnonymous(ctx, config, embargoed) {
  const method = ctx.method;
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) {
    if (['PUT', 'POST', 'DELETE'].includes(method)) throw accessDenied();
    throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }
  if (method === 'OPTIONS') return; // CORS preflight: s3rver answers it without data
  const [, bucket, ...rest] = ctx.path.split('/');
  // no anonymous ListBuckets or ListObjects: a listing would name embargoed keys
  if (decode(bucket) !== config.bucket || rest.length === 0 || rest.join('/') === '') {
    throw accessDenied();
  }
  const key = decode(rest.join('/'));
  // s3rver joins keys into file paths: "..", "." and "//" would reach other keys' files
  if (key.split('/').some(part => part === '' || part === '.' || part === '..')) {
    throw accessDenied();
  }
  for (const name of Object.keys(ctx.query)) {
    if (!ANONYMOUS_QUERY.test(name)) throw accessDenied();
  }
  if (isEmbargoed(key, embargoed)) throw accessDenied();
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const config = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const embargoed = new Set(config.embargoed || []);

  // s3rver's own signature check (V2 only) must know our key; its well-known one must go.
  AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
  AWSAccount.DUMMY_ACCOUNT.createKeyPair(config.accessKeyId, config.secretAccessKey);

  const s3rver = new S3rver({
    directory: config.directory,
    silent: true,
    allowMismatchedSignatures: false,
    configureBuckets: [{ name: config.bucket }],
  });
  await s3rver.configureBuckets();

  async function guard(ctx, next) {
    const signed =
      'authorization' in ctx.headers ||
      Object.keys(ctx.query).some(name =>
        ['x-amz-algorithm', 'x-amz-signature', 'signature', 'awsaccesskeyid'].includes(
          name.toLowerCase(),
        ),
      );
    if (signed) {
      verifySignature(ctx.req, ctx.originalUrl, config);
    } else {
      checkAnonymous(ctx, config, embargoed);
    }
    return next();
  }
  // before s3rver's router (after its error, XML and vhost middleware), so errors are S3's
  s3rver.middleware.splice(s3rver.middleware.length - 1, 0, guard);

  const server = http.createServer(s3rver.callback());
  server.listen(config.port, config.address, () => {
    const { port } = server.address();
    process.stdout.write(JSON.stringify({ listening: port }) + '\n');
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // a reader's keep-alive connection must not hold the exit
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch(err => {
  process.stderr.write(`s3front: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});

/**
 * The SDK's default credential chain, as the Lambda bundles have it: the credentials Lambda puts in the
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and nothing else. Every SDK
 * client's runtime config imports `defaultProvider` from @aws-sdk/credential-provider-node, whose chain
 * also loads the INI, SSO, process, web-identity, container and instance-metadata providers and their
 * clients: code a Lambda never runs but pays for at every cold start. An esbuild alias in
 * infra/functions.ts swaps that package for this module in the Lambda build only; local mode and the tests
 * run from source with the full chain (profiles, the emulator's keys). Same exports, same behaviour on Lambda.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

type Init = Parameters<typeof fromEnv>[0];
type Credentials = { expiration?: Date } | undefined;

export const defaultProvider = (init: Init = {}) => fromEnv(init);

/** As the real module: credentials with an expiry are refreshed, five minutes before it. */
export const credentialsWillNeedRefresh = (credentials: Credentials) => credentials?.expiration !== undefined;
export const credentialsTreatedAsExpired = (credentials: Credentials) =>
  credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < 300_000;

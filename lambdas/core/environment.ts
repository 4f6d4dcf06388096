/**
 * The environment model: statuses, the request a teammate sends, the record the registry keeps and the
 * resource the API answers with. zod schemas are the single definition; types are inferred from them.
 */
import * as z from 'zod';
import { PrincipalArn } from './access';

/** `^[a-z][a-z0-9-]{1,30}[a-z0-9]$`: 3 to 32 characters, safe in every AWS name it ends up in. */
export const ENVIRONMENT_NAME_PATTERN = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

export const EnvironmentStatus = z.enum(['CREATING', 'READY', 'CREATE_FAILED', 'DELETING', 'DELETED', 'DELETE_FAILED', 'UPDATING']);
export type EnvironmentStatus = z.infer<typeof EnvironmentStatus>;

/** Statuses in which an environment holds (or may hold) AWS resources and so counts against quotas. */
export const LIVE_STATUSES: readonly EnvironmentStatus[] = ['CREATING', 'READY', 'CREATE_FAILED', 'DELETING', 'DELETE_FAILED', 'UPDATING'];

export const EnvironmentName = z
  .string()
  .regex(
    ENVIRONMENT_NAME_PATTERN,
    'must be 3 to 32 characters: lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen',
  );

export const Spec = z.object({
  maxVcpus: z.number().int().min(1),
  gpu: z.boolean(),
  /**
   * With `gpu`: the GPU instance families the compute environment adds, chosen at create by preflight (the
   * deployment's families that the region offers; possibly none). Recorded so the workflow launches exactly
   * what was checked; a record made before preflight has none, and the step falls back to the setting.
   */
  gpuInstanceFamilies: z.array(z.string()).optional(),
  /**
   * Scheduled flows on Step Functions (`step-functions create`): two roles, a foreach table and a state machine
   * prefix of its own. Optional: records written before it existed have it off.
   */
  scheduling: z.boolean().optional(),
});
export type Spec = z.infer<typeof Spec>;

/** Body of POST /environments. Unknown fields are rejected (strict). */
export function createRequestSchema(maxVcpusCeiling: number) {
  return z
    .object({
      name: EnvironmentName,
      maxVcpus: z
        .number({ error: 'must be a whole number' })
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(maxVcpusCeiling, `must be at most ${maxVcpusCeiling}, the ceiling set for this deployment`)
        .default(maxVcpusCeiling),
      gpu: z.boolean({ error: 'must be true or false' }).default(true),
      scheduling: z.boolean({ error: 'must be true or false' }).default(false),
      owner: PrincipalArn.optional(),
    })
    .strict();
}
export type CreateRequest = z.infer<ReturnType<typeof createRequestSchema>>;

/** The fields of PATCH /environments/{name}: what a resize may change, and the admin's idle-expiry exemption. */
export const UPDATE_FIELDS = ['maxVcpus', 'gpu', 'scheduling', 'idleExpiryExempt'] as const;

/**
 * Body of PATCH /environments/{name}: any of the spec's fields, checked as in a create (same ceiling, same
 * messages) but with no defaults, since a field left out keeps its value. At least one field; unknown fields
 * are rejected (strict). `idleExpiryExempt` is an admin's (the service checks who sends it).
 */
export function updateRequestSchema(maxVcpusCeiling: number) {
  return z
    .object({
      maxVcpus: z
        .number({ error: 'must be a whole number' })
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(maxVcpusCeiling, `must be at most ${maxVcpusCeiling}, the ceiling set for this deployment`)
        .optional(),
      gpu: z.boolean({ error: 'must be true or false' }).optional(),
      scheduling: z.boolean({ error: 'must be true or false' }).optional(),
      idleExpiryExempt: z.boolean({ error: 'must be true or false' }).optional(),
    })
    .strict()
    .refine((body) => UPDATE_FIELDS.some((field) => body[field] !== undefined), {
      message: `must name at least one of ${UPDATE_FIELDS.join(', ')}`,
    })
    // The same rule for JSON Schema readers (API Gateway's model, the OpenAPI document), which see no refine.
    .meta({ minProperties: 1 });
}
export type UpdateRequest = z.infer<ReturnType<typeof updateRequestSchema>>;

export const Resources = z.object({
  bucket: z.string(),
  jobQueueArn: z.string(),
  computeEnvironmentArn: z.string(),
  jobRoleArn: z.string(),
  instanceProfileArn: z.string(),
  /** The role a teammate assumes to use the environment (the Metaflow client's permissions). */
  accessRoleArn: z.string(),
  /** With scheduling only: the role Step Functions runs scheduled flows with (METAFLOW_SFN_IAM_ROLE). */
  sfnRoleArn: z.string().optional(),
  /** With scheduling only: the role EventBridge starts them with (METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE). */
  eventsRoleArn: z.string().optional(),
  /** With scheduling only: the foreach-join table (METAFLOW_SFN_DYNAMO_DB_TABLE). */
  sfnTableName: z.string().optional(),
  /** With scheduling only: every state machine and rule of the environment starts with `<this>_`. */
  sfnStateMachinePrefix: z.string().optional(),
});
export type Resources = z.infer<typeof Resources>;

/** The Metaflow configuration file: string keys to string values. */
export const MetaflowConfig = z.record(z.string(), z.string());
export type MetaflowConfig = z.infer<typeof MetaflowConfig>;

/** What the registry stores for one environment. */
export const EnvironmentRecord = z.object({
  name: EnvironmentName,
  owner: z.string(),
  /** The owner's IAM unique id (AIDA…, AROA…) when known: a re-created principal of the same name is not the owner. */
  ownerUniqueId: z.string().nullable().default(null),
  status: EnvironmentStatus,
  statusReason: z.string().nullable(),
  region: z.string(),
  spec: Spec,
  resources: Resources,
  config: MetaflowConfig.nullable(),
  /** Bumped by every create and every delete: execution names derive from it, so a retry can't start twice. */
  generation: z.number().int().min(1),
  /** Set when teardown kept a bucket that still holds data; a later create of the same name adopts it. */
  retainedBucket: z.string().nullable(),
  /** Whether the DELETE that started the current teardown asked for ?purge=true (the bucket step checks it). */
  purgeRequested: z.boolean().default(false),
  /** What preflight found that limits the environment without making it useless (DESIGN §4), as sentences; absent: none. */
  warnings: z.array(z.string()).optional(),
  /**
   * Idle expiry (DESIGN §6): the newest job's createdAt the check has seen on the queue. Recorded because Batch
   * lists finished jobs for a limited time only; absent until a job is seen.
   */
  lastActivityAt: z.string().optional(),
  /** When the check announced that the environment is idle and will be torn down; null or absent: not announced. */
  idleExpiryAnnouncedAt: z.string().nullable().optional(),
  /** Set by an admin: idle expiry never touches this environment. */
  idleExpiryExempt: z.boolean().optional(),
  /**
   * While UPDATING: the spec the PATCH asked for (`spec` keeps the one in force until the update succeeds). The
   * update workflow's steps that remove something act only when their input carries exactly this spec.
   */
  pendingSpec: Spec.nullable().optional(),
  /**
   * Which compute environment is the environment's: absent, the one named after it; n, the one an update at
   * generation n made in its place (naming.namesFor), when AWS could not change instance types in place.
   */
  computeEnvironmentRevision: z.number().int().min(1).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type EnvironmentRecord = z.infer<typeof EnvironmentRecord>;

/**
 * Where the workflow driving a CREATING or DELETING environment is: the step it is in, as a sentence, and
 * since when. Read from the running execution when the environment is asked for, never stored.
 */
export const Progress = z.object({
  step: z.string(),
  startedAt: z.string(),
});
export type Progress = z.infer<typeof Progress>;

/** The environment as the API shows it (DESIGN §4). `config` only when READY or UPDATING; `progress` only while a workflow runs. */
export const EnvironmentResource = z.object({
  name: EnvironmentName,
  owner: z.string(),
  status: EnvironmentStatus,
  statusReason: z.string().nullable(),
  region: z.string(),
  spec: Spec,
  resources: Resources,
  config: MetaflowConfig.optional(),
  retainedBucket: z.string().optional(),
  progress: Progress.optional(),
  /** Only when preflight found something that limits the environment: what, and how to lift it. */
  warnings: z.array(z.string()).optional(),
  /** Only when an admin exempted the environment from idle expiry (PATCH idleExpiryExempt). */
  idleExpiryExempt: z.literal(true).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type EnvironmentResource = z.infer<typeof EnvironmentResource>;

export function toEnvironmentResource(record: EnvironmentRecord, progress?: Progress): EnvironmentResource {
  return {
    name: record.name,
    owner: record.owner,
    status: record.status,
    statusReason: record.statusReason,
    region: record.region,
    spec: record.spec,
    resources: record.resources,
    // While UPDATING the queue and bucket stay as they are, so the configuration in force is still the one to use.
    ...((record.status === 'READY' || record.status === 'UPDATING') && record.config ? { config: record.config } : {}),
    ...(record.retainedBucket ? { retainedBucket: record.retainedBucket } : {}),
    ...(progress ? { progress } : {}),
    ...(record.warnings?.length ? { warnings: record.warnings } : {}),
    ...(record.idleExpiryExempt ? { idleExpiryExempt: true as const } : {}),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

/** What every workflow step receives as `$.environment`. */
export const WorkflowEnvironment = z.object({
  name: EnvironmentName,
  owner: z.string(),
  /** Pins the access role's trust to the owner's unique id (see policies.principalConditions). */
  ownerUniqueId: z.string().nullable().default(null),
  spec: Spec,
  generation: z.number().int().min(1),
  /** Teardown only: delete the bucket's data too. */
  purge: z.boolean().default(false),
  /**
   * Teardown: "delete" ends in DELETED, "rollback" (a failed create) ends in CREATE_FAILED. "update": the
   * update workflow (spec is the one asked for), which may remove only what the resize replaces.
   */
  mode: z.enum(['delete', 'rollback', 'update']).default('delete'),
  /** Rollback only: why the create failed, kept as the statusReason. */
  reason: z.string().optional(),
  /** The compute environment to act on, as the record's computeEnvironmentRevision (absent: the original one). */
  computeEnvironmentRevision: z.number().int().min(1).optional(),
});
export type WorkflowEnvironment = z.infer<typeof WorkflowEnvironment>;

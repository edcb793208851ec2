// homing: guaranteed-delivery producer/consumer queues on Redis, addressed by
// service name. The JavaScript client of the same Lua scripts, key layout,
// envelope and error codes as the Python package.
//
//   import { Client } from "homing";
//   const client = await Client.connect("redis://localhost:6379/0");
//   const id = await client.enqueue("weather", { city: "Oslo", tempC: -3 });

export { Client, DEFAULT_URL, ResultWait } from "./client.js";
export { GroupWait } from "./group-wait.js";
export { Consumer, Reject, Snooze } from "./consumer.js";
export * from "./errors.js";
export { SCHEMA } from "./manifest.js";
export {
  Batch,
  DeadLetter,
  DeadPage,
  DistributeResult,
  Event,
  FailOutcome,
  Group,
  GroupStatus,
  Limits,
  PromoteResult,
  Recurring,
  RecurringPage,
  Status,
} from "./types.js";
export { Worker, WorkerStats } from "./worker.js";
export * as envelope from "./envelope.js";
export * as ops from "./ops.js";
export * as manifest from "./manifest.js";
export * as durability from "./durability.js";
export * as metrics from "./metrics.js";
export * as tracing from "./tracing.js";

export const VERSION = "0.1.0";

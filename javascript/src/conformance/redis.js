// The runner's plain Redis access: one command at a time with Buffer replies,
// routed by key on a Cluster, plus the server's description and a port where
// nothing listens (for the 'connection refused' steps).

import net from "node:net";

import { BUFFER_REPLIES } from "../connection.js";

/** A local port with nothing listening, for the 'connection refused' steps. */
export function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** @param {any} conn a node-redis client or cluster */
export const isCluster = (conn) => typeof conn.getSlotMaster === "function";

/**
 * One command with Buffer replies, routed by key on a Cluster.
 * @param {any} conn
 * @param {string | undefined} key
 * @param {(string | Buffer)[]} args
 * @returns {Promise<any>}
 */
export function send(conn, key, args) {
  const options = { typeMapping: BUFFER_REPLIES };
  return isCluster(conn) ? conn.sendCommand(key, false, args, options) : conn.sendCommand(args, options);
}

/** @param {string} text a score as Redis prints it */
export const score = (text) => (text === "inf" ? Infinity : text === "-inf" ? -Infinity : Number(text));

/**
 * 'redis 7.2.4 cluster' and the like, for the report's first line.
 * @param {any} conn
 */
export async function describeServer(conn) {
  const topology = isCluster(conn) ? "cluster" : "standalone";
  let info;
  try {
    info = String(await send(conn, undefined, ["INFO", "server"]));
  } catch {
    return `unknown server, ${topology}`; // a managed service may refuse INFO
  }
  const field = (/** @type {string} */ name) => new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim();
  const name = field("server_name") === "valkey" ? "valkey" : "redis";
  return `${name} ${field("valkey_version") ?? field("redis_version") ?? "?"} ${topology}`;
}

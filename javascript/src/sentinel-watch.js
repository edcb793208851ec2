// Watching the sentinels for a failover of one master (python/homing/sentinel.py).
//
// node-redis's Sentinel client moves to the new primary on +switch-master,
// which Sentinel announces about a second after it told the replica to take
// over (after it polled the replica's INFO): writes the old primary takes in
// that second are wiped when it rejoins as a replica. So each homing Client
// on a redis+sentinel:// URL also listens to every sentinel (only the leader
// of a failover announces its steps):
//
// - +failover-state-send-slaveof-noone: the leader is promoting a replica.
//   The Client stops writing to the old primary at once: it drops its
//   connection, and calls wait (HOLD_MS at most) until the failover ends or
//   aborts, then ask the sentinels for the primary again.
// - +switch-master and a failover's abort: the Client asks again now.

import { createClient } from "redis";

export const PROMOTING = "+failover-state-send-slaveof-noone";
export const SWITCH = "+switch-master";
export const ABORTS = Object.freeze(["-failover-abort-not-elected", "-failover-abort-no-good-slave",
  "+failover-end-for-timeout"]);
export const CHANNELS = Object.freeze([SWITCH, PROMOTING, ...ABORTS]);
/** How long (ms) calls wait for a failover announced by its promotion, at most. */
export const HOLD_MS = 10000;

/**
 * Which master a sentinel event is about: after an `@` (`slave <ip:port> <ip>
 * <port> @ <master> ...`), after `master` (`master <name> <ip> <port>`), or
 * first (+switch-master).
 * @param {string} message
 */
export function masterOf(message) {
  const words = message.split(/\s+/).filter((w) => w !== "");
  const at = words.indexOf("@");
  if (at >= 0) return words[at + 1] ?? "";
  if (words[0] === "master") return words[1] ?? "";
  return words[0] ?? "";
}

/**
 * Subscribe to every sentinel's failover events about `master`; returns the
 * function that stops it. A sentinel that is down is tried again every
 * second (node-redis resubscribes on reconnect).
 * @param {{host: string, port: number}[]} sentinels
 * @param {string} master
 * @param {Record<string, any>} options the sentinels' client options (socket, password)
 * @param {{promoting(): void, settled(to: {host: string, port: number} | null): void}} on
 * settled: +switch-master (with the new primary's address) or an abort (null)
 * @returns {() => void}
 */
export function watchSentinels(sentinels, master, options, on) {
  const clients = sentinels.map(({ host, port }) => {
    const client = createClient({
      ...options,
      socket: { ...options.socket, host, port, reconnectStrategy: () => 1000 },
    });
    client.on("error", () => {}); // a sentinel down: tried again every second
    const listener = (/** @type {string} */ message, /** @type {string} */ channel) => {
      const text = String(message);
      if (masterOf(text) !== master) return;
      if (channel === PROMOTING) {
        on.promoting();
      } else if (channel === SWITCH) {
        // <master name> <old ip> <old port> <new ip> <new port>
        const [, , , host, port] = text.split(/\s+/);
        on.settled(host && /^\d+$/.test(port ?? "") ? { host, port: Number(port) } : null);
      } else {
        on.settled(null);
      }
    };
    client.connect()
      .then(() => client.subscribe([...CHANNELS], listener))
      .catch(() => {}); // closed before it connected
    return client;
  });
  return () => {
    for (const c of clients) {
      try {
        c.destroy();
      } catch {
        // not open
      }
    }
  };
}

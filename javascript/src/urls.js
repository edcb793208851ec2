// Redis URLs homing takes beyond node-redis's own (python/homing/urls.py):
//
// - `redis://h1:p1,h2:p2/0` (or `rediss://`): the seed nodes of a Cluster,
//   tried in turn, so that a client still starts while one seed is down;
// - `redis+sentinel://[user:password@]h1:p1[,h2:p2...]/<master-name>[/db]`
//   (`rediss+sentinel://` for TLS, to the sentinels and the data nodes
//   alike), with `?sentinel_password=...` when the sentinels themselves
//   require a password. The user and password are the data nodes' (the
//   primary's).

import { InvalidArgumentError } from "./errors.js";

export const SENTINEL_SCHEMES = Object.freeze(["redis+sentinel", "rediss+sentinel"]);
export const SENTINEL_PORT = 26379;
export const REDIS_PORT = 6379;

/**
 * @typedef {object} SentinelUrl a parsed redis+sentinel:// URL
 * @property {{host: string, port: number}[]} sentinels
 * @property {string} master the master name the sentinels monitor
 * @property {number} db
 * @property {string | undefined} username
 * @property {string | undefined} password
 * @property {string | undefined} sentinelPassword
 * @property {boolean} tls
 */

/** @param {string} url */
export function isSentinel(url) {
  return SENTINEL_SCHEMES.includes(String(url).split("://", 1)[0].toLowerCase());
}

/**
 * (scheme, userinfo with its '@', hosts, rest): rest is the path and query,
 * from the first '/' or '?'.
 * @param {string} url
 */
function split(url) {
  const at = url.indexOf("://");
  if (at < 0) throw new InvalidArgumentError("invalid Redis URL: no scheme (redis://...)");
  const scheme = url.slice(0, at).toLowerCase();
  const tail = url.slice(at + 3);
  const cuts = [tail.indexOf("/"), tail.indexOf("?")].filter((i) => i >= 0);
  const cut = cuts.length ? Math.min(...cuts) : tail.length;
  const netloc = tail.slice(0, cut);
  const rest = tail.slice(cut);
  const userAt = netloc.lastIndexOf("@");
  return {
    scheme,
    userinfo: userAt >= 0 ? netloc.slice(0, userAt + 1) : "",
    hosts: userAt >= 0 ? netloc.slice(userAt + 1) : netloc,
    rest,
  };
}

/**
 * `host`, `host:port` or `[v6]:port`.
 * @param {string} text
 * @param {number} defaultPort
 */
function hostPort(text, defaultPort) {
  let host;
  let portText;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    host = end < 0 ? "" : text.slice(1, end);
    const tail = end < 0 ? "" : text.slice(end + 1);
    portText = tail.startsWith(":") ? tail.slice(1) : "";
  } else {
    const colon = text.indexOf(":");
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? "" : text.slice(colon + 1);
  }
  if (!host) throw new InvalidArgumentError(`invalid Redis URL: a host is missing in ${JSON.stringify(text)}`);
  if (portText !== "" && !/^\d{1,5}$/.test(portText)) {
    throw new InvalidArgumentError(`invalid Redis URL: the port of ${JSON.stringify(text)} is not a number`);
  }
  const port = portText === "" ? defaultPort : Number(portText);
  if (!(port > 0 && port < 65536)) {
    throw new InvalidArgumentError(`invalid Redis URL: the port of ${JSON.stringify(text)} is out of range`);
  }
  return { host, port };
}

/**
 * One URL per host of a `redis://h1:p1,h2:p2/0` URL (a list of one otherwise).
 * @param {string} url
 * @returns {string[]}
 */
export function seedUrls(url) {
  const { scheme, userinfo, hosts, rest } = split(String(url));
  if (!hosts.includes(",")) return [String(url)];
  return hosts.split(",").map((part) => {
    const { host, port } = hostPort(part.trim(), REDIS_PORT);
    const shown = host.includes(":") ? `[${host}]` : host;
    return `${scheme}://${userinfo}${shown}:${port}${rest}`;
  });
}

/** @param {string} s */
function decode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InvalidArgumentError("invalid Redis URL: a malformed %-escape");
  }
}

/**
 * Parse a redis+sentinel:// URL; InvalidArgumentError for anything malformed.
 * @param {string} url
 * @returns {SentinelUrl}
 */
export function parseSentinel(url) {
  const { scheme, userinfo, hosts, rest } = split(String(url));
  if (!SENTINEL_SCHEMES.includes(scheme)) {
    throw new InvalidArgumentError(`not a Sentinel URL: ${scheme}://`);
  }
  const q = rest.indexOf("?");
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? "" : rest.slice(q + 1);
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.length < 1 || parts.length > 2) {
    throw new InvalidArgumentError(
      "a Sentinel URL names the master after the hosts: " +
        "redis+sentinel://host:26379[,host:port...]/<master-name>[/db]",
    );
  }
  if (parts.length === 2 && !/^\d{1,9}$/.test(parts[1])) {
    throw new InvalidArgumentError(`the database of a Sentinel URL is a number, got ${JSON.stringify(parts[1])}`);
  }
  const options = new URLSearchParams(query);
  const unknown = [...new Set(options.keys())].filter((k) => k !== "sentinel_password").sort();
  if (unknown.length) {
    throw new InvalidArgumentError(
      `unknown option(s) in a Sentinel URL: ${unknown.join(", ")} (only sentinel_password)`,
    );
  }
  const info = userinfo.replace(/@$/, "");
  const colon = info.indexOf(":");
  const user = colon < 0 ? info : info.slice(0, colon);
  const sentinelPassword = options.getAll("sentinel_password").at(-1);
  return {
    sentinels: hosts.split(",").map((h) => hostPort(h.trim(), SENTINEL_PORT)),
    master: decode(parts[0]),
    db: parts.length === 2 ? Number(parts[1]) : 0,
    username: user ? decode(user) : undefined,
    password: colon < 0 ? undefined : decode(info.slice(colon + 1)),
    sentinelPassword,
    tls: scheme === "rediss+sentinel",
  };
}

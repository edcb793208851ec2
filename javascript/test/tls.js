// A private redis-server that speaks only TLS and knows only ACL users, for the
// security tests (the counterpart of python/tests/tls_servers.py).
//
// makeCerts() makes a throwaway certificate authority with the openssl command
// line: a CA, a server certificate for 127.0.0.1 / localhost and a client
// certificate. TlsRedisServer listens on its TLS port only (--port 0), requires
// a client certificate (--tls-auth-clients yes), has the default user switched
// off and starts with one user, "admin" (every command, every key), which the
// tests use to create the restricted users with ACL SETUSER.

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";

import { HOST, RedisServer, freePort } from "./servers.js";

export const ADMIN_USER = "admin";
export const ADMIN_PASSWORD = "admin-secret";

/**
 * @param {string} dir
 * @param {string[]} args
 */
function openssl(dir, args) {
  const res = spawnSync("openssl", args, { cwd: dir, encoding: "utf8", timeout: 60000 });
  if (res.error) throw new Error(`the TLS tests need the openssl command line: ${res.error.message}`);
  if (res.status !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${res.stderr}`);
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/**
 * A P-256 key and a certificate for it, signed by the CA in dir.
 * @param {string} dir @param {string} name @param {string} subject @param {string} extensions
 */
function issue(dir, name, subject, extensions) {
  writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, ["req", "-new", "-nodes", ...EC_KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
  openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", "2", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.crt`,
  ]);
}

/**
 * @typedef {object} Certs PEM file paths, and their contents for Node's tls options
 * @property {string} caFile
 * @property {string} serverCert
 * @property {string} serverKey
 * @property {string} certFile the client certificate
 * @property {string} keyFile the client certificate's key
 * @property {Buffer} ca
 * @property {Buffer} cert the client certificate
 * @property {Buffer} key the client certificate's key
 */

/**
 * A throwaway certificate authority, a server and a client certificate, in dir.
 * @param {string} dir
 * @returns {Certs}
 */
export function makeCerts(dir) {
  mkdirSync(dir, { recursive: true });
  openssl(dir, [
    "req", "-x509", "-new", "-nodes", ...EC_KEY, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
    "-sha256", "-subj", "/CN=homing test CA", "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  issue(dir, "server", "/CN=localhost",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n");
  issue(dir, "client", "/CN=homing test client",
    "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
  const file = (/** @type {string} */ n) => path.join(dir, n);
  return {
    caFile: file("ca.crt"),
    serverCert: file("server.crt"),
    serverKey: file("server.key"),
    certFile: file("client.crt"),
    keyFile: file("client.key"),
    ca: readFileSync(file("ca.crt")),
    cert: readFileSync(file("client.crt")),
    key: readFileSync(file("client.key")),
  };
}

/** Why redis-server cannot run these tests (built without TLS, missing), or false. */
export function noTls() {
  const res = spawnSync("redis-server", ["--port", "0", "--tls-port", "0"], { encoding: "utf8", timeout: 10000 });
  if (res.error) return `redis-server is not installed (${res.error.message})`;
  const out = `${res.stdout}${res.stderr}`;
  return out.includes("not listen anywhere") ? false : `redis-server was built without TLS: ${out.trim().slice(-300)}`;
}

/** A RedisServer on a TLS port only, client certificates required, the default user off. */
export class TlsRedisServer extends RedisServer {
  /**
   * @param {Certs} certs
   * @param {{dir?: string}} [options]
   */
  constructor(certs, options = {}) {
    super(options);
    this.certs = certs;
  }

  /** The admin's URL (rediss://: TLS). */
  get url() {
    return this.urlFor(ADMIN_USER, ADMIN_PASSWORD);
  }

  /** @param {string} user @param {string} password */
  urlFor(user, password) {
    return `rediss://${user}:${password}@${HOST}:${this.port}/0`;
  }

  /** node-redis options of a TLS client (for Client.connect's redisOptions). */
  redisOptions() {
    const { ca, cert, key } = this.certs;
    return { socket: { tls: true, ca, cert, key } };
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.extra = [
      "--port", "0", // overrides RedisServer's plain-text port: TLS only
      "--tls-port", String(this.port),
      "--tls-cert-file", this.certs.serverCert,
      "--tls-key-file", this.certs.serverKey,
      "--tls-ca-cert-file", this.certs.caFile,
      "--tls-auth-clients", "yes",
      // One word per argument: redis-server quotes an argument holding a space.
      "--user", "default", "off", "resetkeys", "-@all",
      "--user", ADMIN_USER, "on", `>${ADMIN_PASSWORD}`, "~*", "&*", "+@all",
    ];
    return super.start();
  }

  /** AUTH as the admin and PING, over TLS. */
  answers() {
    const { ca, cert, key } = this.certs;
    return new Promise((resolve, reject) => {
      const sock = tls.connect({ host: HOST, port: this.port, ca, cert, key });
      let data = "";
      sock.setTimeout(1000, () => sock.destroy(new Error("timeout")));
      sock.on("secureConnect", () => {
        const cmd = (/** @type {string[]} */ a) =>
          `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join("")}`;
        sock.write(cmd(["AUTH", ADMIN_USER, ADMIN_PASSWORD]) + cmd(["PING"]));
      });
      sock.on("data", (chunk) => {
        data += chunk.toString();
        if (data.split("\r\n").length > 2) {
          sock.end();
          resolve(data.includes("+PONG"));
        }
      });
      sock.on("error", reject);
    });
  }
}

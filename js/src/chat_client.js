// The page's NATS client for the ping-pong chat: nats.js over WebSocket, protobuf in
// the page. No DOM here: the widget (widget.js) and the benchmark page both use it.
//
// The learner's own credentials, and replies only on the learner's own inbox
// (`_INBOX.<user>`): the only inbox their permissions let them read.
import { credsAuthenticator, wsconnect } from "@nats-io/nats-core";
import protobuf from "protobufjs/light.js";
import schema from "labkit:schema";

const root = protobuf.Root.fromJSON(schema);
export const PingRequest = root.lookupType("labkit.PingRequest");
export const ErrorReply = root.lookupType("labkit.ErrorReply");

// The application server's error replies carry these headers (labkit/server/dispatch.py).
const ERROR_HEADERS = ["Labkit-Error", "Nats-Service-Error"];
// Users the stack keeps for itself: their credentials never go to a page.
export const STACK_USERS = ["labkit_server", "labkit_observer"];

export function encodePing({ destination = "", origin = "", message = "" }) {
  return PingRequest.encode(PingRequest.create({ destination, origin, message })).finish();
}

export function decodePing(bytes) {
  const ping = PingRequest.decode(bytes);
  return { destination: ping.destination, origin: ping.origin, message: ping.message };
}

// The user name inside a creds text (the JWT's `name` claim).
export function userOfCreds(creds) {
  const match = /-{3,}BEGIN NATS USER JWT-{3,}\s*\n\s*(\S+)/.exec(creds || "");
  if (!match) {
    throw new Error("these are not NATS user credentials (no user JWT block)");
  }
  const payload = match[1].split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const claims = JSON.parse(atob(payload + "=".repeat((4 - (payload.length % 4)) % 4)));
  return String(claims.name);
}

// A revoked or expired user: the server says so, then refuses every reconnect.
function isCredentialsGone(error) {
  const text = String(error?.message || error).toLowerCase();
  return (
    text.includes("revoked") ||
    text.includes("authorization violation") ||
    text.includes("authentication expired")
  );
}

function describe(error) {
  const cause = error?.cause || error;
  if (cause?.name === "PermissionViolationError") {
    return `refused by the NATS server: permissions violation for ${cause.operation} to "${cause.subject}"`;
  }
  if (cause?.name === "TimeoutError") {
    return "no answer in time (is the application server running?)";
  }
  if (cause?.name === "NoRespondersError") {
    return "nobody answers on that subject (is the application server running?)";
  }
  return String(cause?.message || cause);
}

export class ChatClient {
  // servers: ws:// or wss:// URLs; creds: the learner's creds text.
  // on: {line(ping, msg), status(state, detail), refused(text)}
  constructor({ servers, creds, name = "labkit browser chat", on = {} }) {
    this.user = userOfCreds(creds);
    if (STACK_USERS.includes(this.user)) {
      throw new Error(
        `${this.user} is the stack's own user: the page only ever gets a learner's credentials`,
      );
    }
    this.servers = servers;
    this.creds = creds;
    this.name = name;
    this.on = on;
    this.nc = null;
    this.closedBy = null;
  }

  get inboxPrefix() {
    return `_INBOX.${this.user}`;
  }

  async connect() {
    this.nc = await wsconnect({
      servers: this.servers,
      name: this.name,
      authenticator: credsAuthenticator(new TextEncoder().encode(this.creds)),
      inboxPrefix: this.inboxPrefix,
      // A page that reloads gets a new connection; a lost one is retried a few times.
      maxReconnectAttempts: 10,
      reconnectTimeWait: 500,
    });
    this.nc.subscribe(`${this.user}.inbox`, {
      callback: (error, msg) => {
        if (error) {
          this.on.refused?.(describe(error));
          return;
        }
        try {
          this.on.line?.(decodePing(msg.data), msg);
        } catch (decodeError) {
          this.on.refused?.(`a line on ${msg.subject} is not a PingRequest: ${decodeError}`);
        }
      },
    });
    // Announce "connected" only once the server has the subscription.
    await this.nc.flush();
    this.#watchStatus();
    this.nc.closed().then((error) => {
      const detail = this.closedBy || (error ? describe(error) : "closed");
      this.on.status?.("closed", detail);
    });
    this.on.status?.("connected", `${this.user} on ${this.nc.getServer()}`);
    return this;
  }

  // Send a chat line through the server's relay: a request on `<user>.ping` (or
  // `subject`, to see the server refuse someone else's). Returns {receipt} (the line as
  // the server relayed it, origin set by the server), {error} (an error reply), or
  // {refused} (the NATS server did not let it out).
  async send({ destination, message, origin = "", subject = "", timeout = 5000 }) {
    if (!this.nc || this.nc.isClosed()) {
      return { refused: "not connected: the chat connection is closed" };
    }
    const target = subject || `${this.user}.ping`;
    const data = encodePing({ destination, origin, message });
    try {
      const reply = await this.nc.request(target, data, { timeout });
      const failed = ERROR_HEADERS.some((name) => reply.headers?.has(name));
      if (failed) {
        const error = ErrorReply.decode(reply.data);
        return { error: { code: error.code, message: error.message, subject: error.subject } };
      }
      return { receipt: decodePing(reply.data) };
    } catch (error) {
      return { refused: describe(error) };
    }
  }

  // Publish a note about what the page did on `<user>.page` (the kernel listens there:
  // it cannot read the widget's state while a cell runs, NATS it can).
  report(entry) {
    if (this.nc && !this.nc.isClosed()) {
      this.nc.publish(`${this.user}.page`, new TextEncoder().encode(JSON.stringify(entry)));
    }
  }

  async close(reason = null) {
    this.closedBy ||= reason;
    if (this.nc && !this.nc.isClosed()) {
      await this.nc.close();
    }
  }

  async #watchStatus() {
    for await (const status of this.nc.status()) {
      if (status.type === "error" && isCredentialsGone(status.error)) {
        // Reconnecting with revoked credentials cannot succeed: stop now, say why.
        this.closedBy =
          `the NATS server cut this connection: ${status.error.message}. ` +
          "Your credentials were revoked (logged out): log in again to chat.";
        this.close();
        return;
      }
      if (status.type === "error" && status.error?.name !== "PermissionViolationError") {
        // (A refused publish or subscription is reported by the request or subscription.)
        this.on.refused?.(describe(status.error));
      } else if (status.type === "disconnect") {
        this.on.status?.("reconnecting", "the connection dropped; trying again");
      } else if (status.type === "reconnect") {
        this.on.status?.("connected", `${this.user} on ${this.nc.getServer()}`);
      }
    }
  }
}

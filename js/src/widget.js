// The browser chat widget (anywidget): the page itself is a NATS client.
//
// initialize() runs once per widget model: it takes the learner's credentials (the
// `creds` trait, which the kernel empties once the page is connected; a reloaded page
// asks the kernel with a message), connects over WebSocket and keeps the connection.
// render() draws a view; its Send button and the kernel's `outbox` trait both reach
// the connection through the model (anywidget gives the two functions different model
// proxies). Every entry of the page's log is also published on `<user>.page`: the
// kernel reads the widget's state only between cells, NATS messages at any time.
import { ChatClient } from "./chat_client.js";

export { ChatClient, decodePing, encodePing, userOfCreds } from "./chat_client.js";

const STYLE = `
.labkit-chat { font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px;
  border: 1px solid var(--jp-border-color1, #ccc); border-radius: 4px; padding: 6px; max-width: 52em; }
.labkit-chat-head { display: flex; gap: 0.6em; align-items: baseline; margin-bottom: 4px; }
.labkit-chat-state { padding: 0 0.5em; border-radius: 3px; background: #eee; }
.labkit-chat-state[data-state="connected"] { background: #d4f4d4; }
.labkit-chat-state[data-state="closed"], .labkit-chat-state[data-state="refused"] { background: #fdd; }
.labkit-chat-detail { color: var(--jp-ui-font-color2, #666); }
.labkit-chat-log { max-height: 16em; overflow-y: auto; display: flex; flex-direction: column-reverse;
  border-top: 1px solid var(--jp-border-color2, #eee); margin: 4px 0; }
.labkit-chat-line { margin: 0; padding: 1px 4px; white-space: pre-wrap; overflow-wrap: anywhere; }
.labkit-chat-line[data-kind="refused"], .labkit-chat-line[data-kind="error"],
.labkit-chat-line[data-kind="closed"] { background: var(--jp-rendermime-error-background, #fdd); }
.labkit-chat-form { display: grid; grid-template-columns: auto 1fr auto 1fr; gap: 3px 6px; align-items: center; }
.labkit-chat-form input { min-width: 0; }
`;

const FIELDS = [
  ["destination", "to"],
  ["message", "message"],
  ["subject", "subject"],
  ["origin", "origin"],
];

function nameOf(model, user) {
  const names = model.get("names") || {};
  return names[user] || user;
}

function describe(model, entry) {
  const who = (user) => nameOf(model, user);
  switch (entry.kind) {
    case "sent":
      return (
        `→ sent on ${entry.subject}: "${entry.message}" for ${who(entry.destination)}` +
        (entry.origin ? ` (origin written in the message: ${who(entry.origin)})` : "")
      );
    case "receipt":
      return `✓ relayed by the server: from ${who(entry.origin)} to ${who(entry.destination)}: "${entry.message}"`;
    case "received":
      return `← from ${who(entry.origin)}: "${entry.message}"`;
    case "error":
      return `✗ the server answered with an error, ${entry.code}: ${entry.message}`;
    case "refused":
      return `✗ ${entry.text}`;
    case "closed":
      return `■ ${entry.text}`;
    default:
      return entry.text || JSON.stringify(entry);
  }
}

function append(model, entry, client) {
  model.set("log", [...(model.get("log") || []), entry]);
  model.save_changes();
  client?.report(entry);
}

function setState(model, state, detail) {
  model.set("state", state);
  model.set("detail", detail);
  model.save_changes();
}

function askForCreds(model) {
  // The kernel answers a {type: "creds"} message with the learner's credentials.
  return new Promise((resolve) => {
    const listener = (content) => {
      if (content?.type === "creds") {
        model.off("msg:custom", listener);
        resolve(content);
      }
    };
    model.on("msg:custom", listener);
    model.send({ type: "creds" });
  });
}

async function sendLine(model, client, request) {
  const { nonce = null, destination = "", message = "", origin = "", subject = "" } = request;
  const target = subject || `${client.user}.ping`;
  append(model, { kind: "sent", nonce, subject: target, destination, origin, message }, client);
  const outcome = await client.send({ destination, message, origin, subject: target });
  if (outcome.receipt) {
    append(model, { kind: "receipt", nonce, ...outcome.receipt }, client);
  } else if (outcome.error) {
    append(model, { kind: "error", nonce, ...outcome.error }, client);
  } else {
    append(model, { kind: "refused", nonce, text: outcome.refused }, client);
  }
}

async function connect(model) {
  let creds = model.get("creds");
  if (!creds) {
    setState(model, "connecting", "asking the kernel for your credentials");
    ({ creds } = await askForCreds(model));
  }
  setState(model, "connecting", `to ${model.get("servers").join(", ")}`);
  let client;
  try {
    client = new ChatClient({
      servers: model.get("servers"),
      creds,
      name: `browser chat (${model.get("user")})`,
      on: {
        line: (ping, msg) =>
          append(model, { kind: "received", subject: msg.subject, ...ping }, client),
        refused: (text) => append(model, { kind: "refused", text }, client),
        status: (state, detail) => {
          if (state === "closed") {
            append(model, { kind: "closed", text: `connection closed: ${detail}` });
          } else {
            client.report({ kind: "status", state, text: detail });
          }
          setState(model, state, detail);
        },
      },
    });
    if (client.user !== model.get("user")) {
      throw new Error(`the credentials are ${client.user}'s, the widget is ${model.get("user")}'s`);
    }
    await client.connect();
  } catch (error) {
    const text = `could not connect: ${error?.message || error}`;
    append(model, { kind: "refused", text });
    setState(model, "refused", text);
    return null;
  }
  return client;
}

async function initialize({ model }) {
  const handled = new Set((model.get("log") || []).map((entry) => entry.nonce).filter(Boolean));
  let client = null;
  const queue = [];
  const run = (request) => {
    if (!request?.nonce || handled.has(request.nonce)) return;
    handled.add(request.nonce);
    if (client) sendLine(model, client, request);
    else queue.push(request);
  };
  // From the kernel (synced) and from this page's Send buttons (local to the page).
  model.on("change:outbox", () => run(model.get("outbox")));
  model.on("change:page_send", () => run(model.get("page_send")));
  // The kernel's chat.stop(): end the connection, keep the transcript on the page.
  model.on("msg:custom", (content) => {
    if (content?.type === "close") client?.close("the kernel stopped the chat (chat.stop())");
  });
  // In the background: initialize() is awaited before any view renders.
  connect(model).then(async (connected) => {
    client = connected;
    if (!client) return;
    for (const request of queue.splice(0)) await sendLine(model, client, request);
    // A line the kernel asked for before this page loaded.
    run(model.get("outbox"));
  });
  return () => client?.close();
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "labkit-chat";
  const style = document.createElement("style");
  style.textContent = STYLE;
  const head = document.createElement("div");
  head.className = "labkit-chat-head";
  const title = document.createElement("b");
  const state = document.createElement("span");
  state.className = "labkit-chat-state";
  const detail = document.createElement("span");
  detail.className = "labkit-chat-detail";
  head.append(title, state, detail);

  const log = document.createElement("div");
  log.className = "labkit-chat-log";
  const lines = document.createElement("div");
  log.append(lines);

  const form = document.createElement("form");
  form.className = "labkit-chat-form";
  const inputs = {};
  for (const [field, label] of FIELDS) {
    const caption = document.createElement("label");
    caption.textContent = label;
    const input = document.createElement("input");
    input.type = "text";
    input.name = field;
    input.className = `labkit-chat-${field}`;
    caption.htmlFor = input.id = `labkit-chat-${field}-${Math.random().toString(36).slice(2)}`;
    inputs[field] = input;
    form.append(caption, input);
  }
  inputs.destination.value = model.get("peer");
  inputs.subject.placeholder = `${model.get("user")}.ping`;
  inputs.origin.placeholder = "(left empty: the server sets it)";
  inputs.message.placeholder = "a line to send";
  const send = document.createElement("button");
  send.type = "submit";
  send.textContent = "Send";
  send.className = "labkit-chat-send";
  form.append(send);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = { nonce: `page-${Date.now()}-${Math.random().toString(36).slice(2)}` };
    for (const [field] of FIELDS) request[field] = inputs[field].value.trim();
    if (!request.message) return;
    model.set("page_send", request);
    inputs.message.value = "";
  });

  const draw = () => {
    title.textContent = `${nameOf(model, model.get("user"))} in the browser`;
    state.textContent = model.get("state");
    state.dataset.state = model.get("state");
    detail.textContent = model.get("detail");
    send.disabled = model.get("state") !== "connected";
    lines.replaceChildren(
      ...(model.get("log") || []).map((entry) => {
        const line = document.createElement("p");
        line.className = "labkit-chat-line";
        line.dataset.kind = entry.kind;
        line.textContent = describe(model, entry);
        return line;
      }),
    );
  };
  for (const name of ["log", "state", "detail", "names"]) model.on(`change:${name}`, draw);
  draw();
  root.append(style, head, log, form);
  // Marked as a Jupyter widget (the host's widget styles; what tools look for).
  el.classList.add("jupyter-widgets");
  el.append(root);
}

export default { initialize, render };

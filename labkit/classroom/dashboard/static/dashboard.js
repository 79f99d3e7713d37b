// The instructor dashboard: polls api/state, renders the grid and the tap, posts actions.
// Everything a learner could choose (email, subject, message) goes in as text, never HTML.
"use strict";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const headers = { "X-XSRFToken": config.xsrf };
// Longer tap cells are cut on the page; the whole text is in the cell's tooltip.
const MAX_CELL = 200;

function el(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

function show(id, lines) {
  const box = document.getElementById(id);
  box.replaceChildren(...lines.map((line) => el("p", line)));
  box.hidden = lines.length === 0;
}

async function act(learner, action) {
  const label = learner.email || learner.user_id;
  const question = action === "revoke"
    ? `Cut ${label}'s NATS connections now (revoke their credentials)?`
    : `Give ${label} a new random password?`;
  if (!window.confirm(question)) return;
  const url = `${config.prefix}api/users/${encodeURIComponent(learner.user_id)}/${action}`;
  const response = await fetch(url, { method: "POST", headers, credentials: "same-origin" });
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    show("notice", [`${action} refused (${response.status}): ${body.detail || body.error}`]);
  } else if (action === "password") {
    show("notice", [`New password for ${body.email}: ${body.password}`,
      "It is shown once: pass it on now."]);
  } else {
    show("notice", [`${body.email}'s credentials are revoked` +
      (body.nats_pushed ? "; their connections are cut." : "; the server gets it shortly.")]);
  }
  refresh();
}

function renderGrid(state) {
  const grid = document.getElementById("grid");
  const head = el("tr");
  for (const title of ["learner", "online", "requests", "errors", ...state.exercises, "actions"]) {
    head.append(el("th", title));
  }
  grid.tHead.replaceChildren(head);
  const rows = state.learners.map((learner) => {
    const row = el("tr", null, { "data-user": learner.user_id });
    row.append(el("td", learner.email || learner.user_id, { title: learner.user_id, class: "who" }));
    row.append(el("td", learner.online ? `● ${learner.connections}` : "○",
      { class: learner.online ? "online" : "offline", "data-online": String(learner.online) }));
    row.append(el("td", learner.requests, { class: "requests" }));
    row.append(el("td", learner.errors, { class: learner.errors ? "errors some" : "errors" }));
    for (const exercise of state.exercises) {
      const found = learner.progress[exercise];
      const stateName = found ? found.state : "not started";
      const text = found ? `${found.state} (${found.attempts})` : "·";
      row.append(el("td", text, {
        class: `cell ${stateName.replace(" ", "-")}`,
        "data-exercise": exercise,
        "data-state": stateName,
        title: found && found.at ? `last report ${found.at}` : stateName,
      }));
    }
    const buttons = el("td", null, { class: "actions" });
    for (const [action, label] of [["revoke", "Revoke"], ["password", "Reset password"]]) {
      const button = el("button", label, { type: "button", "data-action": action });
      button.addEventListener("click", () => act(learner, action));
      buttons.append(button);
    }
    row.append(buttons);
    return row;
  });
  grid.tBodies[0].replaceChildren(...rows);
  document.getElementById("online-count").textContent = String(state.online_count);
}

function renderTap(tap) {
  const body = document.getElementById("tap").tBodies[0];
  body.replaceChildren(...tap.rows.slice().reverse().map((row) => {
    const line = el("tr");
    for (const column of ["time", "subject", "sender", "message", "size"]) {
      const text = column === "sender" && row.email ? row.email : String(row[column]);
      const short = text.length > MAX_CELL ? `${text.slice(0, MAX_CELL)}…` : text;
      line.append(el("td", short, { title: text }));
    }
    return line;
  }));
  document.getElementById("tap-seen").textContent = String(tap.seen);
}

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  const status = document.getElementById("status");
  try {
    const response = await fetch(`${config.prefix}api/state`,
      { headers, credentials: "same-origin", cache: "no-store" });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      status.textContent = `the dashboard answered ${response.status}: ${body.detail || ""}`;
      return;
    }
    const state = await response.json();
    renderGrid(state);
    renderTap(state.tap);
    show("problems", state.problems);
    document.getElementById("generated-at").textContent = state.generated_at;
    status.textContent = "live.";
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes) + 1);
  } catch (error) {
    status.textContent = `cannot reach the dashboard (${error}); retrying`;
  } finally {
    refreshing = false;
  }
}

refresh();
setInterval(refresh, config.refreshMs);

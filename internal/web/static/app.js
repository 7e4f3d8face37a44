// Ferry console: live job updates. Everything else works without JavaScript; this only keeps a
// jobs table current from the API's Server-Sent Events (/api/v1/jobs/events), with the page's
// session cookie. No inline script: the Content-Security-Policy allows only this file.
"use strict";

function fmtTime(s) {
  if (!s) return "—";
  const d = new Date(s);
  if (isNaN(d) || d.getUTCFullYear() < 1971) return "—";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
}

function cell(row, field) {
  return row.querySelector(`td[data-field="${field}"]`);
}

function text(el, value) {
  if (el && el.textContent !== value) el.textContent = value;
}

function cancelForm(table, id) {
  const f = document.createElement("form");
  f.method = "post";
  f.action = `/jobs/${encodeURIComponent(id)}/cancel`;
  for (const [n, v] of [["csrf", table.dataset.csrf], ["back", table.dataset.back]]) {
    const i = document.createElement("input");
    i.type = "hidden"; i.name = n; i.value = v || "";
    f.appendChild(i);
  }
  const b = document.createElement("button");
  b.type = "submit"; b.textContent = "Cancel";
  f.appendChild(b);
  return f;
}

function newRow(table, job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  for (const f of ["id", "identity", "user", "name", "status", "reason", "exit_code", "submitted", "started", "ended", "actions"]) {
    const td = document.createElement("td");
    td.dataset.field = f;
    row.appendChild(td);
  }
  const code = document.createElement("code");
  code.textContent = job.id;
  cell(row, "id").appendChild(code);
  const body = table.tBodies[0];
  body.insertBefore(row, body.firstChild);
  const empty = table.parentNode.querySelector("p.empty");
  if (empty) empty.remove();
  return row;
}

function update(table, job) {
  let row = table.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (!row) row = newRow(table, job);
  text(cell(row, "identity"), job.identity);
  text(cell(row, "user"), job.user);
  text(cell(row, "name"), job.name || "");
  const st = cell(row, "status");
  let span = st.querySelector("span.state");
  if (!span) { span = document.createElement("span"); st.appendChild(span); }
  span.className = `state state-${job.status}`;
  text(span, job.status);
  text(cell(row, "reason"), [job.reason, job.error].filter(Boolean).join(" "));
  text(cell(row, "exit_code"), job.exit_code === undefined || job.exit_code === null ? "—" : String(job.exit_code));
  text(cell(row, "submitted"), fmtTime(job.submitted));
  text(cell(row, "started"), fmtTime(job.started));
  text(cell(row, "ended"), fmtTime(job.ended));
  const actions = cell(row, "actions");
  if (job.done) {
    actions.replaceChildren();
  } else if (!actions.querySelector("form")) {
    actions.appendChild(cancelForm(table, job.id));
  }
}

function live(table) {
  const q = new URLSearchParams();
  if (table.dataset.identity) q.set("identity", table.dataset.identity);
  const status = table.querySelector("caption.live-status");
  const es = new EventSource(`/api/v1/jobs/events?${q}`);
  es.onopen = () => { if (status) status.textContent = "Live"; table.dataset.live = "open"; };
  es.onerror = () => { if (status) status.textContent = "Reconnecting…"; table.dataset.live = "reconnecting"; };
  es.addEventListener("job", (ev) => {
    try { update(table, JSON.parse(ev.data)); } catch (e) { console.error(e); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const t of document.querySelectorAll("table[data-live-jobs]")) live(t);
});

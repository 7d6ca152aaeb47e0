// What people say about a head, a cluster or a family: catalogue entries (imported, each with its source)
// and users' own labels and notes. Shown apart from the labels the atlas computes, and never mixed in.

import { api } from "./api.js";
import { errorBox, fill, h } from "./dom.js";
import { chosenModel } from "./url.js";

function noteItem(note, reload) {
  const remove = h("button", { type: "button", class: "link-button", title: "Delete this note" }, "delete");
  remove.addEventListener("click", async () => {
    remove.disabled = true;
    try {
      await api(`/api/notes/${note.id}`, { method: "DELETE" });
      await reload();
    } catch (err) {
      remove.replaceWith(errorBox(err));
    }
  });
  const who = [note.author, new Date(note.created_at).toISOString().slice(0, 10)].filter(Boolean).join(", ");
  return h("li", { class: `note note-${note.origin}`, dataset: { noteId: String(note.id), origin: note.origin } },
    note.label ? h("strong", {}, note.label) : null,
    note.note ? h("span", {}, ` ${note.note}`) : null,
    note.origin === "catalogue"
      ? h("span", { class: "muted" }, " · catalogue: ", h("a", { href: note.source_url, target: "_blank", rel: "noopener" }, note.source_url))
      : null,
    h("span", { class: "muted" }, ` · ${who} · `), remove);
}

/** A panel listing the notes of `kind` `target` (e.g. "head", "L3H5"), with a form to add one. */
export function notesPanel(kind, target, scopeId = null) {
  const list = h("div", { class: "notes-list" });
  const query = `/api/notes?kind=${encodeURIComponent(kind)}&target=${encodeURIComponent(target)}`;
  async function reload() {
    try {
      const notes = (await api(query)).filter((n) => scopeId === null || n.scope_id === scopeId);
      const catalogue = notes.filter((n) => n.origin === "catalogue");
      const users = notes.filter((n) => n.origin === "user");
      fill(list,
        h("h3", {}, "From catalogues of known heads"),
        catalogue.length ? h("ul", { id: "catalogue-notes" }, catalogue.map((n) => noteItem(n, reload)))
          : h("p", { class: "muted", id: "catalogue-notes" }, "No catalogue entry (import one with `attnlens heads import-catalogue FILE`)."),
        h("h3", {}, "Your labels and notes"),
        users.length ? h("ul", { id: "user-notes" }, users.map((n) => noteItem(n, reload)))
          : h("p", { class: "muted", id: "user-notes" }, "None yet."));
    } catch (err) {
      fill(list, errorBox(err));
    }
  }
  const label = h("input", { name: "label", maxlength: "100", placeholder: "a label, e.g. copies the callee" });
  const note = h("textarea", { name: "note", maxlength: "5000", rows: "2", placeholder: "a note (evidence, doubts, links)" });
  const author = h("input", { name: "author", maxlength: "100", placeholder: "your name (optional)" });
  const problem = h("div");
  const form = h("form", { class: "note-form", id: "note-form" },
    h("label", {}, "Label ", label), h("label", {}, "Note ", note), h("label", {}, "Author ", author),
    h("button", { type: "submit" }, "Save"), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problem);
    const body = { kind, target, scope_id: scopeId };
    if (chosenModel()) body.model = chosenModel(); // the shown model's note (the list is read for it too)
    for (const [key, input] of [["label", label], ["note", note], ["author", author]]) if (input.value.trim()) body[key] = input.value.trim();
    try {
      await api("/api/notes", { method: "POST", body });
      label.value = note.value = "";
      await reload();
    } catch (err) {
      fill(problem, errorBox(err));
    }
  });
  const element = h("section", { class: "panel notes-panel", id: "notes-panel" },
    h("h2", {}, "What people say about it"),
    h("p", { class: "muted" }, "Not computed by the atlas: claims imported from catalogues (with their source) and notes written here. They never change the labels above."),
    list, form);
  return { element, load: reload };
}

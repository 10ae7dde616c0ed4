// DOM helpers, formatting and forms that show the API's errors next to their fields.

export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "value") element.value = value;
    else if (name === "checked") element.checked = Boolean(value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function mount(target, ...children) {
  target.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined));
}

export function yuan(fen) {
  if (fen === null || fen === undefined) return "-";
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return sign + "¥" + Math.floor(abs / 100).toLocaleString("zh-CN") + "." + String(abs % 100).padStart(2, "0");
}

// "12.8" -> 1280. Anything else is sent as typed, for the API to refuse with its own message.
export function toFen(text) {
  const trimmed = String(text).trim();
  if (/^\d+(\.\d{1,2})?$/.test(trimmed)) return Math.round(Number(trimmed) * 100);
  if (trimmed === "") return null;
  return trimmed;
}

export function toInt(text) {
  const trimmed = String(text).trim();
  if (/^-?\d+$/.test(trimmed)) return Number(trimmed);
  if (trimmed === "") return null;
  return trimmed;
}

// Times are shown and entered in Beijing time (the shop's), whatever the browser's zone.
const SHANGHAI = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
                                                   hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

// "2026-12-05T13:04" in Beijing time, for a datetime-local input.
export function shanghaiLocal(date) {
  const parts = Object.fromEntries(SHANGHAI.formatToParts(date).map((part) => [part.type, part.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

export function when(iso) {
  if (!iso) return "-";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return shanghaiLocal(date).replace("T", " ");
}

// datetime-local input value (Beijing time) -> ISO 8601 with its offset (the API wants one).
export function isoFromLocal(value) {
  if (!value) return null;
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value) ? value + ":00+08:00" : value;
}

export const ORDER_STATUS = {
  pending_payment: "待付款", paid: "待发货", shipped: "已发货", completed: "已完成", cancelled: "已取消", refunded: "已退款",
};
export const AFTER_SALE_STATUS = {
  requested: "待审核", approved: "已同意", rejected: "已拒绝", refunding: "退款中", refunded: "已退款",
  exchanging: "换货中", exchanged: "已换货", disputed: "申诉中",
};
export const AFTER_SALE_KIND = { refund: "仅退款", return: "退货退款", exchange: "换货" };
export const REFUND_STATUS = { processing: "处理中", success: "成功", failed: "失败", abnormal: "异常", stuck: "卡住" };

export function badge(text, tone) {
  return h("span", { class: "badge " + (tone || "") }, text);
}

export function specsText(specs) {
  const entries = Object.entries(specs || {});
  return entries.length ? entries.map(([k, v]) => `${k}:${v}`).join(" / ") : "默认规格";
}

export function toast(text, tone) {
  const box = h("div", { class: "toast " + (tone || "ok"), role: "status" }, text);
  document.body.append(box);
  setTimeout(() => box.remove(), 3500);
}

// --- forms --------------------------------------------------------------------------------

// An input with its label and an error slot; `field` is the API's name for it ("skus.0.price_fen").
export function field(label, field, input, hint) {
  input.dataset.field = field;
  if (!input.id) input.id = "f-" + field.replace(/[^A-Za-z0-9]/g, "-") + "-" + Math.random().toString(36).slice(2, 7);
  return h("div", { class: "field", dataset: { field } },
    h("label", { for: input.id }, label), input,
    hint ? h("small", { class: "muted" }, hint) : null,
    h("div", { class: "field-error", dataset: { errorFor: field }, role: "alert" }));
}

export function input(attrs) { return h("input", { type: "text", ...attrs }); }

export function select(options, attrs) {
  return h("select", attrs || {}, options.map(([value, label]) => h("option", { value }, label)));
}

export function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((slot) => { slot.textContent = ""; });
  form.querySelectorAll(".invalid").forEach((element) => element.classList.remove("invalid"));
  const summary = form.querySelector(".form-error");
  if (summary) summary.textContent = "";
}

// Show the API's Message at the form's top and each Details message next to its field (the
// nearest enclosing field when the API names a part of it, e.g. "specs.颜色").
export function showError(form, error) {
  clearErrors(form);
  const summary = form.querySelector(".form-error");
  const unplaced = [];
  for (const detail of error.details || []) {
    const name = String(detail.field || "");
    let slot = null;
    for (let probe = name; probe && !slot; probe = probe.includes(".") ? probe.slice(0, probe.lastIndexOf(".")) : "") {
      slot = form.querySelector(`.field-error[data-error-for="${CSS.escape(probe)}"]`);
    }
    if (slot) {
      slot.textContent = slot.textContent ? slot.textContent + "；" + detail.message : detail.message;
      const control = form.querySelector(`[data-field="${CSS.escape(slot.dataset.errorFor)}"]:not(.field)`);
      if (control) control.classList.add("invalid");
    } else {
      unplaced.push(name ? `${name}: ${detail.message}` : detail.message);
    }
  }
  if (summary) summary.textContent = [error.message, ...unplaced].join("；");
}

// A form whose submit runs `save` once (the button is disabled while it runs) and shows its errors.
export function form(children, save, submitLabel) {
  const button = h("button", { type: "submit", class: "primary" }, submitLabel || "保存");
  const element = h("form", { novalidate: true }, h("div", { class: "form-error", role: "alert" }), children,
    h("div", { class: "actions" }, button));
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    clearErrors(element);
    try {
      await save(element);
    } catch (error) {
      if (error && error.message !== undefined && "details" in error) showError(element, error);
      else throw error;
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

// A modal dialog; resolves when closed. `build(close)` returns its content.
export function dialog(title, build) {
  const backdrop = h("div", { class: "backdrop" });
  const onKey = (event) => { if (event.key === "Escape") close(); };
  const close = () => { backdrop.remove(); document.removeEventListener("keydown", onKey); };
  document.addEventListener("keydown", onKey);
  const box = h("div", { class: "dialog", role: "dialog", "aria-label": title },
    h("header", {}, h("h3", {}, title), h("button", { type: "button", class: "link", onclick: close, "aria-label": "关闭" }, "✕")),
    build(close));
  backdrop.append(box);
  backdrop.addEventListener("click", (event) => { if (event.target === backdrop) close(); });
  document.body.append(backdrop);
  const first = box.querySelector("input, select, textarea");
  if (first) first.focus();
  return close;
}

export function table(columns, rows, empty) {
  if (!rows.length) return h("p", { class: "empty muted" }, empty || "暂无数据");
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", {}, label)))),
    h("tbody", {}, rows.map((row) => h("tr", { dataset: row.__id ? { id: row.__id } : {} },
      columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

export function notice(error) {
  return h("div", { class: "notice " + (error.missingRoute ? "warn" : "error"), role: "alert" }, error.message);
}

export function card(title, ...body) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, body);
}

// "load more" paging over {items, next_cursor}.
export function pager(load, render, emptyText) {
  const list = h("div", {}, h("p", { class: "muted" }, "加载中…"));
  const more = h("button", { type: "button", class: "more", hidden: true }, "加载更多");
  let cursor = null;
  let items = [];
  const box = h("div", {}, list, more);
  async function next(reset) {
    if (reset) { cursor = null; items = []; }
    more.disabled = true;
    try {
      const page = await load(cursor);
      items = items.concat(page.items || []);
      cursor = page.next_cursor;
      mount(list, render(items, emptyText));
      more.hidden = !cursor;
    } catch (error) {
      mount(list, notice(error));
      more.hidden = true;
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", () => next(false));
  box.reload = () => next(true);
  next(true);
  return box;
}

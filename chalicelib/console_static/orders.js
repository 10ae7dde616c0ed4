// 订单: the list with filters and batch shipping; one order's detail, timeline, payments, refunds.
import { get, post, patch } from "./api.js";
import { h, mount, yuan, when, specsText, toast, field, input, select, form, dialog, card, notice, badge,
         ORDER_STATUS, REFUND_STATUS, pager, table } from "./ui.js";

const CARRIERS = ["顺丰速运", "中通快递", "圆通速递", "韵达速递", "申通快递", "京东物流", "邮政EMS"];
const DELIVERY = { express: "快递", pickup: "门店自提", same_city: "同城配送", none: "无需配送" };
const UPLOAD_STATUS = { pending: "待上传", uploaded: "已上传", failed: "上传失败" };
const STATUS_TONE = { paid: "warn", shipped: "info", completed: "ok", cancelled: "muted", refunded: "muted" };

const orderPath = (orderId) => "/v1/admin/orders/" + encodeURIComponent(orderId);
const statusBadge = (status) => badge(ORDER_STATUS[status] || status, STATUS_TONE[status]);
const carrierSelect = () => select(CARRIERS.map((name) => [name, name]));

function shipDialog(order, done) {
  dialog("发货：" + order.order_id, (close) => {
    const carrier = carrierSelect();
    const tracking = input({ name: "tracking_no", placeholder: "运单号" });
    return form([field("快递公司", "carrier", carrier), field("运单号", "tracking_no", tracking)], async () => {
      await post(orderPath(order.order_id) + "/ship", { carrier: carrier.value, tracking_no: tracking.value.trim() });
      close();
      toast("已发货：" + order.order_id);
      done();
    }, "确认发货");
  });
}

// POST /v1/admin/orders/batch-ship: one request, a result per order (each applied once).
function batchShipDialog(orders, done) {
  dialog(`批量发货（${orders.length} 单）`, (close) => {
    const carrier = carrierSelect();
    const rows = orders.map((order, index) => ({ order, tracking: input({ placeholder: "运单号", dataset: { order: order.order_id } }), index }));
    const results = h("div", { class: "batch-results" });
    return form([
      field("快递公司（全部）", "carrier", carrier),
      h("table", {}, h("tbody", {}, rows.map(({ order, tracking, index }) => h("tr", {},
        h("td", {}, order.order_id, h("div", { class: "muted small" }, addressLine(order))),
        h("td", {}, field("运单号", `shipments.${index}.tracking_no`, tracking)))))),
      results,
    ], async () => {
      const reply = await post("/v1/admin/orders/batch-ship", {
        shipments: rows.map(({ order, tracking }) => ({ order_id: order.order_id, carrier: carrier.value, tracking_no: tracking.value.trim() })) });
      const failed = reply.results.filter((result) => !result.ok);
      mount(results, h("ul", {}, reply.results.map((result) => h("li", { class: result.ok ? "ok" : "bad" },
        `${result.order_id}：${result.ok ? "已发货" : (result.message || result.code)}`))));
      done();
      if (!failed.length) { close(); toast(`已发货 ${reply.results.length} 单`); }
    }, "全部发货");
  });
}

// Store names for pickup orders, loaded once per page view.
let storeNames = {};
async function loadStoreNames() {
  try {
    const stores = (await get("/v1/admin/stores", { limit: 50 })).items;
    storeNames = Object.fromEntries(stores.map((store) => [store.store_id, store.name]));
  } catch (error) { /* the id alone */ }
}

function addressLine(order) {
  const a = order.address;
  if (a) return `${a.name || ""} ${a.phone || ""} ${[a.province, a.city, a.district, a.detail].filter(Boolean).join("")}`;
  if (order.store_id) return "自提门店：" + (storeNames[order.store_id] || order.store_id);
  return DELIVERY[order.delivery_method] || "";
}

function linesText(order) {
  return order.lines.map((line) => `${line.name}（${specsText(line.specs)}）×${line.quantity}`).join("；");
}

export async function ordersPage(content, params, query) {
  await loadStoreNames();
  const status = select([["", "全部状态"], ...Object.entries(ORDER_STATUS)]);
  status.value = (query && query.get("status")) || "";
  const from = h("input", { type: "date" });
  const to = h("input", { type: "date" });
  const find = input({ placeholder: "订单号" });
  const selected = new Map();
  const batchButton = h("button", { type: "button", class: "primary", disabled: true }, "批量发货");
  const filtersBox = h("div", { class: "filter-error" });
  const updateBatch = () => { batchButton.disabled = !selected.size; batchButton.textContent = `批量发货（${selected.size}）`; };

  const render = (orders) => table([
    ["", (o) => o.status === "paid" ? h("input", { type: "checkbox", "aria-label": "选择 " + o.order_id, checked: selected.has(o.order_id),
      onchange: (event) => { if (event.target.checked) selected.set(o.order_id, o); else selected.delete(o.order_id); updateBatch(); } }) : ""],
    ["订单号", (o) => h("a", { href: "#/orders/" + encodeURIComponent(o.order_id) }, o.order_id)],
    ["下单时间", (o) => h("span", { class: "nowrap" }, when(o.created_at))],
    ["状态", (o) => statusBadge(o.status)],
    ["实付", (o) => yuan(o.payable_fen)],
    ["商品", (o) => h("span", { class: "clip" }, linesText(o))],
    ["配送", (o) => h("span", {}, DELIVERY[o.delivery_method] || o.delivery_method, h("div", { class: "muted small" }, addressLine(o)))],
    ["操作", (o) => o.status === "paid" ? h("button", { type: "button", onclick: () => shipDialog(o, () => list.reload()) }, "发货") : ""],
  ], orders.map((o) => ({ ...o, __id: o.order_id })), "没有符合条件的订单");

  const dayStart = (value, end) => value ? `${value}T${end ? "23:59:59" : "00:00:00"}+08:00` : undefined;
  const list = pager((cursor) => get("/v1/admin/orders", {
    status: status.value || undefined, created_from: dayStart(from.value), created_to: dayStart(to.value, true), limit: 20, cursor,
  }), render);
  const reload = () => { selected.clear(); updateBatch(); list.reload(); };
  [status, from, to].forEach((control) => control.addEventListener("change", reload));
  batchButton.addEventListener("click", () => batchShipDialog([...selected.values()], reload));
  const findForm = h("form", { class: "row gap", onsubmit: (event) => { event.preventDefault(); if (find.value.trim()) location.hash = "#/orders/" + encodeURIComponent(find.value.trim()); } },
    find, h("button", { type: "submit" }, "查看"));
  mount(content,
    h("div", { class: "row" }, h("h1", {}, "订单"), batchButton),
    card(null, h("div", { class: "row gap filters" }, h("label", {}, "状态 ", status), h("label", {}, "下单从 ", from),
      h("label", {}, "到 ", to), findForm), filtersBox, h("p", { class: "muted small" }, "日期按北京时间；勾选待发货订单可批量发货。")),
    list);
}

// --- one order -----------------------------------------------------------------------------

function timeline(order) {
  const events = [["下单", order.created_at]];
  for (const payment of order.payments || []) events.push([`支付 ${yuan(payment.amount_fen)}（${payment.transaction_id}）`, payment.paid_at]);
  if (!order.payments?.length && order.paid_at) events.push(["支付", order.paid_at]);
  const shipments = order.shipments?.length ? order.shipments : (order.shipment ? [order.shipment] : []);
  const names = Object.fromEntries(order.lines.map((line) => [line.sku_id, line.name]));
  for (const shipment of shipments) {
    const parts = (shipment.lines || []).map((line) => `${names[line.sku_id] || line.sku_id}×${line.quantity}`).join("，");
    events.push([`发货：${shipment.carrier} ${shipment.tracking_no}${parts ? "（" + parts + "）" : ""}`, shipment.shipped_at]);
  }
  for (const remark of order.remarks || []) events.push([`备注（${remark.by}）：${remark.text}`, remark.at]);
  if (order.cancelled_at) events.push([`取消${order.cancel_reason ? "：" + order.cancel_reason : ""}`, order.cancelled_at]);
  for (const refund of order.refunds || []) {
    events.push([`退款 ${yuan(refund.amount_fen)}：${REFUND_STATUS[refund.status] || refund.status}（${refund.out_refund_no}）`, refund.created_at || null]);
  }
  const dated = events.filter(([, at]) => at).sort((a, b) => new Date(a[1]) - new Date(b[1]));
  const undated = events.filter(([, at]) => !at);
  return h("ol", { class: "timeline" }, [...dated, ...undated].map(([text, at]) => h("li", {}, h("time", {}, at ? when(at) : ""), h("span", {}, text))));
}

function addressDialog(order, done) {
  dialog("修改收货地址", (close) => {
    const a = order.address || {};
    const inputs = Object.fromEntries(["name", "phone", "province", "city", "district", "detail"].map((key) => [key, input({ value: a[key] || "" })]));
    const reason = input({ placeholder: "例如 买家来电要求修改" });
    const labels = { name: "收货人", phone: "电话", province: "省", city: "市", district: "区", detail: "详细地址" };
    return form([...Object.entries(inputs).map(([key, element]) => field(labels[key], key, element)), field("修改原因", "reason", reason)], async () => {
      const body = Object.fromEntries(Object.entries(inputs).map(([key, element]) => [key, element.value]));
      await patch(orderPath(order.order_id) + "/address", { ...body, reason: reason.value });
      close();
      toast("地址已修改");
      done();
    });
  });
}

// The chosen lines (quantity > 0) of a per-line form, and a save that puts the API's
// "lines.<k>.*" errors back on the order line they came from.
function chosenLines(order, quantities) {
  const indexes = [];
  const lines = [];
  order.lines.forEach((line, index) => {
    const quantity = quantities[index].value.trim();
    if (quantity && quantity !== "0") {
      indexes.push(index);
      lines.push({ sku_id: line.sku_id, quantity: /^\d+$/.test(quantity) ? Number(quantity) : quantity });
    }
  });
  const remap = (error) => {
    error.details = error.details.map((detail) => ({ ...detail,
      field: String(detail.field || "").replace(/^lines\.(\d+)\./, (match, k) => `lines.${indexes[Number(k)] ?? k}.`) }));
    return error;
  };
  return { lines, remap };
}

function refundDialog(order, done) {
  dialog("商家退款", (close) => {
    const quantities = order.lines.map((line, index) => input({ inputmode: "numeric", value: "0", dataset: { sku: line.sku_id }, "aria-label": line.name + " 退款数量" }));
    const reason = input({ placeholder: "例如 缺货" });
    const requestId = "console-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
    return form([
      h("table", {}, h("tbody", {}, order.lines.map((line, index) => h("tr", {}, h("td", {}, `${line.name}（${specsText(line.specs)}）`),
        h("td", {}, `已购 ${line.quantity}，应付 ${yuan(line.payable_fen)}`), h("td", {}, field("退款数量", `lines.${index}.quantity`, quantities[index])))))),
      field("退款原因", "reason", reason),
    ], async () => {
      const { lines, remap } = chosenLines(order, quantities);
      await post(orderPath(order.order_id) + "/refunds", { request_id: requestId, lines, reason: reason.value }).catch((e) => { throw remap(e); });
      close();
      toast("退款已发起");
      done();
    }, "确认退款");
  });
}

function splitShipDialog(order, done) {
  dialog("拆单发货", (close) => {
    const carrier = carrierSelect();
    const tracking = input({ placeholder: "运单号" });
    const quantities = order.lines.map((line) => input({ inputmode: "numeric", value: "0", "aria-label": line.name + " 发货数量" }));
    return form([
      h("table", {}, h("tbody", {}, order.lines.map((line, index) => h("tr", {}, h("td", {}, `${line.name}（${specsText(line.specs)}）×${line.quantity}`,
          h("div", { class: "muted small" }, `已发 ${(order.shipped_units || {})[line.sku_id] || 0}`)),
        h("td", {}, field("本次发货", `lines.${index}.quantity`, quantities[index])))))),
      field("快递公司", "carrier", carrier), field("运单号", "tracking_no", tracking),
    ], async () => {
      const { lines, remap } = chosenLines(order, quantities);
      await post(orderPath(order.order_id) + "/shipments", { lines, carrier: carrier.value, tracking_no: tracking.value.trim() })
        .catch((e) => { throw remap(e); });
      close();
      toast("已发货");
      done();
    }, "发出这一包");
  });
}

function remarkForm(order, done) {
  const text = input({ placeholder: "仅商家可见" });
  return form([field("添加备注", "text", text)], async () => {
    await post(orderPath(order.order_id) + "/remarks", { text: text.value });
    toast("备注已添加");
    done();
  }, "添加备注");
}

export async function orderDetailPage(content, orderId) {
  const reload = () => orderDetailPage(content, orderId);
  let order;
  try {
    [order] = await Promise.all([get(orderPath(orderId)), loadStoreNames()]);
  } catch (error) {
    mount(content, h("a", { href: "#/orders" }, "← 返回订单列表"), notice(error));
    return;
  }
  const shipped = ["shipped", "completed"].includes(order.status);
  const actions = h("div", { class: "row gap" },
    order.status === "paid" ? h("button", { type: "button", class: "primary", onclick: () => shipDialog(order, reload) }, "发货") : null,
    order.status === "paid" && order.lines.length ? h("button", { type: "button", onclick: () => splitShipDialog(order, reload) }, "拆单发货") : null,
    order.status === "paid" && order.address ? h("button", { type: "button", onclick: () => addressDialog(order, reload) }, "修改地址") : null,
    ["paid", "shipped", "completed"].includes(order.status) ? h("button", { type: "button", onclick: () => refundDialog(order, reload) }, "商家退款") : null);
  mount(content,
    h("a", { href: "#/orders" }, "← 返回订单列表"),
    h("div", { class: "row" }, h("h1", {}, "订单 ", order.order_id, " ", statusBadge(order.status)), actions),
    h("div", { class: "grid2" },
      card("订单信息", h("dl", { class: "facts" },
        h("dt", {}, "买家"), h("dd", {}, order.user_id),
        h("dt", {}, "下单时间"), h("dd", {}, when(order.created_at)),
        h("dt", {}, "支付时间"), h("dd", {}, when(order.paid_at)),
        h("dt", {}, "配送方式"), h("dd", {}, DELIVERY[order.delivery_method] || order.delivery_method),
        h("dt", {}, "收货信息"), h("dd", {}, addressLine(order) || "-"),
        h("dt", {}, "商户单号"), h("dd", {}, order.out_trade_no),
        order.shipping_upload ? [h("dt", {}, "微信发货信息"), h("dd", {}, UPLOAD_STATUS[order.shipping_upload.status] || order.shipping_upload.status)] : null)),
      card("时间线", timeline(order))),
    card("商品", table([
      ["商品", (l) => l.name], ["规格", (l) => specsText(l.specs)], ["单价", (l) => yuan(l.price_fen)], ["数量", (l) => String(l.quantity)],
      ["优惠", (l) => yuan(l.discount_fen)], ["应付", (l) => yuan(l.payable_fen)],
    ], order.lines),
    h("dl", { class: "facts totals" },
      h("dt", {}, "商品金额"), h("dd", {}, yuan(order.goods_fen)),
      h("dt", {}, "优惠"), h("dd", {}, (order.discount_fen ? "-" : "") + yuan(order.discount_fen)),
      h("dt", {}, "运费"), h("dd", {}, yuan(order.delivery_fee_fen)),
      h("dt", {}, "实付"), h("dd", { class: "strong" }, yuan(order.payable_fen)),
      h("dt", {}, "已退款"), h("dd", {}, yuan(order.refunded_fen)))),
    card("支付记录", table([["微信支付单号", (p) => p.transaction_id], ["金额", (p) => yuan(p.amount_fen)], ["时间", (p) => when(p.paid_at)]],
      order.payments, "尚未支付")),
    card("退款记录", table([["退款单号", (r) => r.out_refund_no], ["金额", (r) => yuan(r.amount_fen)],
      ["状态", (r) => REFUND_STATUS[r.status] || r.status], ["售后单", (r) => r.request_id || "-"],
      ["操作", (r) => ["failed", "abnormal", "stuck"].includes(r.status) ? h("button", { type: "button", onclick: async () => {
        try { await post("/v1/admin/refunds/" + encodeURIComponent(r.out_refund_no) + "/retry"); toast("已重试"); reload(); } catch (error) { toast(error.message, "bad"); }
      } }, "重试") : ""]], order.refunds, "无退款")),
    shipped || order.shipments?.length ? card("物流", (order.shipments?.length ? order.shipments : [order.shipment]).filter(Boolean)
      .map((s) => h("p", {}, `${s.carrier} ${s.tracking_no}（${when(s.shipped_at)}）`))) : null,
    card("商家备注", (order.remarks || []).map((r) => h("p", {}, h("span", { class: "muted small" }, `${when(r.at)} ${r.by}：`), r.text)),
      remarkForm(order, reload)));
}

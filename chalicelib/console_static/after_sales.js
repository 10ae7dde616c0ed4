// 售后: the queue by status; approve, reject (with a reason), mark a return received, ship a replacement.
import { get, post } from "./api.js";
import { h, mount, yuan, when, toast, field, input, select, form, dialog, card, badge, pager, table,
         AFTER_SALE_STATUS, AFTER_SALE_KIND, REFUND_STATUS } from "./ui.js";

const path = (id) => "/v1/admin/after-sales/" + encodeURIComponent(id);

async function act(button, url, done, success) {
  button.disabled = true;
  try {
    await post(url);
    toast(success);
    done();
  } catch (error) {
    toast(error.message, "bad");
    button.disabled = false;
  }
}

function rejectDialog(request, done) {
  dialog("拒绝售后申请", (close) => {
    const reason = input({ placeholder: "将展示给买家" });
    return form([field("拒绝原因", "reason", reason)], async () => {
      await post(path(request.request_id) + "/reject", { reason: reason.value });
      close();
      toast("已拒绝");
      done();
    }, "确认拒绝");
  });
}

function replacementDialog(request, done) {
  dialog("寄出换货商品", (close) => {
    const carrier = input({ value: "顺丰速运" });
    const tracking = input({ placeholder: "运单号" });
    return form([field("快递公司", "carrier", carrier), field("运单号", "tracking_no", tracking)], async () => {
      await post(path(request.request_id) + "/ship-replacement", { carrier: carrier.value, tracking_no: tracking.value.trim() });
      close();
      toast("换货已寄出");
      done();
    }, "确认寄出");
  });
}

function actions(request, done) {
  const buttons = [];
  const button = (label, onclick, tone) => {
    const element = h("button", { type: "button", class: tone || "" }, label);
    element.addEventListener("click", () => onclick(element));
    buttons.push(element);
  };
  if (request.status === "requested" || request.status === "disputed") {
    button("同意", (b) => act(b, path(request.request_id) + "/approve", done, "已同意：" + request.request_id), "primary");
    button("拒绝", () => rejectDialog(request, done), "danger");
  }
  if (request.status === "approved" && request.kind === "return") {
    button("确认收货并退款", (b) => act(b, path(request.request_id) + "/receive", done, "已确认收货"), "primary");
  }
  if (request.status === "approved" && request.kind === "exchange") button("寄出换货", () => replacementDialog(request, done), "primary");
  return h("div", { class: "row gap" }, buttons);
}

export async function afterSalesPage(content, params, query) {
  const status = select([["requested", "待审核"], ["", "全部"], ...Object.entries(AFTER_SALE_STATUS).filter(([key]) => key !== "requested")]);
  status.value = (query && query.get("status")) ?? "requested";
  const render = (items) => table([
    ["售后单", (r) => h("span", {}, r.request_id, h("div", { class: "muted small" }, when(r.created_at)))],
    ["订单", (r) => h("a", { href: "#/orders/" + encodeURIComponent(r.order_id) }, r.order_id)],
    ["类型", (r) => AFTER_SALE_KIND[r.kind] || r.kind],
    ["原因", (r) => h("span", {}, r.reason, r.dispute_reason ? h("div", { class: "muted small" }, "申诉：" + r.dispute_reason) : null)],
    ["金额", (r) => yuan(r.amount_fen)],
    ["状态", (r) => h("span", {}, badge(AFTER_SALE_STATUS[r.status] || r.status, r.status === "requested" ? "warn" : ""),
      r.refund_status ? h("div", { class: "muted small" }, "退款：" + (REFUND_STATUS[r.refund_status] || r.refund_status)) : null,
      r.return_shipment ? h("div", { class: "muted small" }, `退回：${r.return_shipment.carrier} ${r.return_shipment.tracking_no}`) : null,
      r.note ? h("div", { class: "muted small" }, r.note) : null)],
    ["操作", (r) => actions(r, () => list.reload())],
  ], items.map((r) => ({ ...r, __id: r.request_id })), "没有售后申请");
  const list = pager((cursor) => get("/v1/admin/after-sales", { status: status.value || undefined, limit: 20, cursor }), render);
  status.addEventListener("change", () => list.reload());
  mount(content, h("h1", {}, "售后"), card(null, h("label", {}, "状态 ", status)), list);
}

// 告警: low stock, payment and refund anomalies (GET /v1/admin/alerts).
import { get } from "./api.js";
import { h, mount, when, card, select, pager, table } from "./ui.js";

const KINDS = { low_stock: "低库存", payment_anomaly: "支付异常", refund_failed: "退款失败", refund_abnormal: "退款异常",
                refund_stuck: "退款卡住" };

export async function alertsPage(content) {
  const kind = select([["", "全部类型"], ...Object.entries(KINDS)]);
  const render = (items) => table([
    ["时间", (a) => when(a.created_at)],
    ["类型", (a) => KINDS[a.kind] || a.kind],
    ["对象", (a) => a.sku_id ? `${a.product_id || ""} / ${a.sku_id}` : (a.detail?.order_id || a.detail?.out_refund_no || "-")],
    ["详情", (a) => a.kind === "low_stock" ? `可售 ${a.available}，提醒线 ${a.threshold}`
      : h("code", { class: "small" }, JSON.stringify(a.detail || {}))],
  ], items, "没有告警");
  const list = pager((cursor) => get("/v1/admin/alerts", { kind: kind.value || undefined, limit: 50, cursor }), render);
  kind.addEventListener("change", () => list.reload());
  mount(content, h("h1", {}, "告警"), card(null, h("label", {}, "类型 ", kind)), list);
}

// 概览: GET /v1/admin/dashboard; while the API lacks it, the same figures from the routes it has.
import { get } from "./api.js";
import { h, mount, yuan, when, card } from "./ui.js";

function shanghaiToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());
}

async function countOf(path, query) {
  const page = await get(path, { ...query, limit: 100 });
  return page.items.length + (page.next_cursor ? "+" : "");
}

async function fallbackFigures() {
  const today = shanghaiToday();
  const [sales, pending, openAfterSales, alerts] = await Promise.all([
    get("/v1/admin/reports/sales", { from: today, to: today }).catch(() => ({ items: [] })),
    countOf("/v1/admin/orders", { status: "paid" }),
    countOf("/v1/admin/after-sales", { status: "requested" }),
    countOf("/v1/admin/alerts"),
  ]);
  const day = sales.items.find((item) => item.date === today) || { orders: 0, paid_orders: 0, gmv_fen: 0 };
  return { today: { orders: day.orders, paid_orders: day.paid_orders, gmv_fen: day.gmv_fen },
           pending_shipments: pending, open_after_sales: openAfterSales, open_alerts: alerts };
}

async function recent(path, query, item, emptyText) {
  try {
    const page = await get(path, { ...query, limit: 5 });
    return page.items.length ? h("ul", { class: "recent" }, page.items.map(item)) : h("p", { class: "muted" }, emptyText);
  } catch (error) {
    return h("p", { class: "muted" }, error.message);
  }
}

export async function dashboardPage(content) {
  mount(content, h("h1", {}, "概览"), h("p", { class: "muted" }, "加载中…"));
  let figures;
  let note = null;
  try {
    figures = await get("/v1/admin/dashboard");
  } catch (error) {
    if (!error.missingRoute) throw error;
    figures = await fallbackFigures();
    note = h("p", { class: "muted small" }, "（概览接口尚未上线，数字由订单、售后、告警列表汇总）");
  }
  const tile = (label, value, href, tone) => h("a", { class: "tile " + (tone || ""), href: href || null },
    h("div", { class: "tile-label" }, label), h("div", { class: "tile-value" }, String(value)));
  mount(content,
    h("h1", {}, "概览"),
    h("p", { class: "muted" }, "今日（北京时间 " + shanghaiToday() + "）"),
    h("div", { class: "tiles" },
      tile("今日订单", figures.today.orders),
      tile("今日支付订单", figures.today.paid_orders),
      tile("今日成交额 (GMV)", yuan(figures.today.gmv_fen)),
      tile("待发货", figures.pending_shipments, "#/orders?status=paid", Number(figures.pending_shipments) ? "warn" : ""),
      tile("待处理售后", figures.open_after_sales, "#/after-sales", Number(figures.open_after_sales) ? "warn" : ""),
      tile("告警", figures.open_alerts, "#/alerts", Number(figures.open_alerts) ? "bad" : "")),
    note,
    h("div", { class: "grid2" },
      card("待发货订单", await recent("/v1/admin/orders", { status: "paid" }, (o) => h("li", {},
        h("a", { href: "#/orders/" + encodeURIComponent(o.order_id) }, o.order_id), " ", yuan(o.payable_fen), " ",
        h("span", { class: "muted small" }, when(o.created_at))), "没有待发货订单")),
      card("待审核售后", await recent("/v1/admin/after-sales", { status: "requested" }, (r) => h("li", {},
        h("a", { href: "#/after-sales" }, r.reason), " ", yuan(r.amount_fen), " ",
        h("span", { class: "muted small" }, when(r.created_at))), "没有待审核的售后"))),
    card("快捷入口",
      h("div", { class: "quick" },
        h("a", { href: "#/products" }, "新建商品"), h("a", { href: "#/orders" }, "批量发货"),
        h("a", { href: "#/after-sales" }, "处理售后"), h("a", { href: "#/marketing" }, "秒杀与优惠券"))));
}

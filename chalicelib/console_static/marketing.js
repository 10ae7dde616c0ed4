// 营销活动: flash sales (秒杀), coupon templates (优惠券) and full-reduction activities (满减).
import { get, post, patch } from "./api.js";
import { h, mount, yuan, when, toFen, toInt, isoFromLocal, shanghaiLocal, toast, field, input, select, form, dialog, card, badge, pager, table } from "./ui.js";

const SALE_STATUS = { upcoming: "未开始", active: "进行中", sold_out: "已售罄", ended: "已结束" };
const COUPON_KIND = { full_reduction: "满减券", discount: "折扣券", no_threshold: "无门槛券" };
const CHANNEL = { claim: "领券中心", new_user: "新人礼", birthday: "生日礼", grant: "定向发放", share: "分享" };
const localInput = (offsetHours) => h("input", { type: "datetime-local", value: shanghaiLocal(new Date(Date.now() + offsetHours * 3600 * 1000)) });

async function quick(call, success, done) {
  try { await call(); toast(success); done(); } catch (error) { toast(error.message, "bad"); }
}

// --- 秒杀 ----------------------------------------------------------------------------------

function saleDialog(done) {
  dialog("新建秒杀", (close) => {
    const sku = input({ placeholder: "sku-..." });
    const price = input({ inputmode: "decimal" });
    const quantity = input({ inputmode: "numeric" });
    const limit = input({ inputmode: "numeric", value: "1" });
    const starts = localInput(0.02);
    const ends = localInput(24);
    const shards = input({ inputmode: "numeric", value: "1" });
    const requestId = "console-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    return form([field("SKU 编号", "sku_id", sku), field("秒杀价（元）", "price_fen", price), field("秒杀数量", "quantity", quantity, "从该 SKU 的可售库存中划出"),
                 field("每人限购", "per_user_limit", limit), field("开始时间", "starts_at", starts), field("结束时间", "ends_at", ends),
                 field("分片数", "shards", shards, "高并发时分散热点，默认 1")], async () => {
      await post("/v1/admin/flash-sales", { sku_id: sku.value.trim(), price_fen: toFen(price.value), quantity: toInt(quantity.value),
        per_user_limit: toInt(limit.value), starts_at: isoFromLocal(starts.value), ends_at: isoFromLocal(ends.value),
        shards: toInt(shards.value) ?? 1, request_id: requestId });
      close();
      toast("秒杀已创建");
      done();
    }, "创建秒杀");
  });
}

function flashSales() {
  const state = select([["active", "进行中/未开始"], ["ending", "结算中"], ["ended", "已结束"]]);
  const render = (items) => table([
    ["商品", (s) => h("span", {}, s.name, h("div", { class: "muted small" }, `${s.sku_id} · ${s.sale_id}`))],
    ["秒杀价", (s) => h("span", {}, yuan(s.price_fen), h("div", { class: "muted small strike" }, yuan(s.original_price_fen)))],
    ["剩余/总量", (s) => `${s.remaining} / ${s.quantity}`],
    ["排队/成交/落空", (s) => `${s.queued} / ${s.won} / ${s.lost}`],
    ["时间", (s) => `${when(s.starts_at)} – ${when(s.ends_at)}`],
    ["状态", (s) => badge(SALE_STATUS[s.status] || s.status, s.status === "active" ? "ok" : "")],
    ["操作", (s) => s.status === "ended" ? "" : h("button", { type: "button", class: "danger",
      onclick: () => quick(() => post("/v1/admin/flash-sales/" + encodeURIComponent(s.sale_id) + "/stop"), "已停止", () => list.reload()) }, "停止")],
  ], items, "没有秒杀");
  const list = pager((cursor) => get("/v1/admin/flash-sales", { state: state.value, limit: 20, cursor }), render);
  state.addEventListener("change", () => list.reload());
  return card("秒杀", h("div", { class: "row gap" }, state, h("button", { type: "button", class: "primary", onclick: () => saleDialog(() => list.reload()) }, "新建秒杀")), list);
}

// --- 优惠券 --------------------------------------------------------------------------------

function couponDialog(done) {
  dialog("新建优惠券", (close) => {
    const name = input({});
    const kind = select(Object.entries(COUPON_KIND));
    const threshold = input({ inputmode: "decimal", placeholder: "满多少元" });
    const off = input({ inputmode: "decimal", placeholder: "减多少元" });
    const rate = input({ inputmode: "numeric", placeholder: "900 = 9折" });
    const cap = input({ inputmode: "decimal", placeholder: "最多优惠（元）" });
    const total = input({ inputmode: "numeric", value: "1000" });
    const perUser = input({ inputmode: "numeric", value: "1" });
    const channel = select(Object.entries(CHANNEL));
    const days = input({ inputmode: "numeric", value: "7" });
    return form([field("名称", "name", name), field("类型", "kind", kind), field("门槛（元）", "threshold_fen", threshold), field("减免（元）", "off_fen", off),
                 field("折扣（千分比）", "rate_permille", rate), field("折扣封顶（元）", "cap_fen", cap), field("发行总量", "total", total),
                 field("每人限领", "per_user_limit", perUser), field("发放渠道", "channel", channel), field("领取后有效天数", "valid_days", days)], async () => {
      const body = { name: name.value, kind: kind.value, total: toInt(total.value), per_user_limit: toInt(perUser.value), channel: channel.value,
                     valid_days: toInt(days.value) };
      for (const [key, value] of [["threshold_fen", toFen(threshold.value)], ["off_fen", toFen(off.value)], ["rate_permille", toInt(rate.value)], ["cap_fen", toFen(cap.value)]]) {
        if (value !== null) body[key] = value;
      }
      await post("/v1/admin/coupon-templates", body);
      close();
      toast("优惠券已创建");
      done();
    }, "创建优惠券");
  });
}

function couponTerms(t) {
  if (t.kind === "full_reduction") return `满${yuan(t.threshold_fen)}减${yuan(t.off_fen)}`;
  if (t.kind === "discount") return `${t.rate_permille / 100}折` + (t.cap_fen ? `，最多减${yuan(t.cap_fen)}` : "");
  return `无门槛减${yuan(t.off_fen)}`;
}

function coupons() {
  const render = (items) => table([
    ["名称", (t) => h("span", {}, t.name, h("div", { class: "muted small" }, t.template_id))],
    ["规则", couponTerms], ["渠道", (t) => CHANNEL[t.channel] || t.channel],
    ["已发/总量", (t) => `${t.issued} / ${t.total}`], ["每人", (t) => String(t.per_user_limit)],
    ["状态", (t) => t.status === "active" ? badge("发放中", "ok") : badge("已暂停", "muted")],
    ["操作", (t) => h("button", { type: "button", onclick: () => quick(() => patch("/v1/admin/coupon-templates/" + encodeURIComponent(t.template_id),
      { status: t.status === "active" ? "paused" : "active" }), "已更新", () => list.reload()) }, t.status === "active" ? "暂停" : "恢复")],
  ], items, "没有优惠券");
  const list = pager((cursor) => get("/v1/admin/coupon-templates", { limit: 50, cursor }), render);
  return card("优惠券", h("button", { type: "button", class: "primary", onclick: () => couponDialog(() => list.reload()) }, "新建优惠券"), list);
}

// --- 满减活动 ------------------------------------------------------------------------------

function activityDialog(done) {
  dialog("新建满减活动", (close) => {
    const name = input({ value: "满减" });
    const tiers = [0, 1, 2].map(() => [input({ inputmode: "decimal", placeholder: "满（元）" }), input({ inputmode: "decimal", placeholder: "减（元）" })]);
    const starts = localInput(0);
    const ends = localInput(24 * 7);
    return form([field("名称", "name", name),
      tiers.map(([threshold, off], index) => h("div", { class: "row gap" },
        field(`第${index + 1}档 满`, `tiers.${index}.threshold_fen`, threshold), field("减", `tiers.${index}.off_fen`, off))),
      h("div", { class: "field-error", dataset: { errorFor: "tiers" } }),
      field("开始时间", "starts_at", starts), field("结束时间", "ends_at", ends)], async () => {
      const body = { kind: "full_reduction", name: name.value, starts_at: isoFromLocal(starts.value), ends_at: isoFromLocal(ends.value),
        tiers: tiers.filter(([threshold, off]) => threshold.value.trim() || off.value.trim())
          .map(([threshold, off]) => ({ threshold_fen: toFen(threshold.value), off_fen: toFen(off.value) })) };
      await post("/v1/admin/activities", body);
      close();
      toast("活动已创建");
      done();
    }, "创建活动");
  });
}

const ACTIVITY_KIND = { full_reduction: "满减", group_buy: "拼团", bargain: "砍价" };

function activityTerms(a) {
  if (a.kind === "group_buy") return `${ACTIVITY_KIND.group_buy}：${a.group_size}人成团，团购价${yuan(a.price_fen)}（${a.sku_id}，${a.window_minutes}分钟内）`;
  if (a.kind === "bargain") return `${ACTIVITY_KIND.bargain}：${a.helpers_to_floor}人助力砍到${yuan(a.floor_price_fen)}（${a.sku_id}）`;
  return (a.tiers || []).map((t) => `满${yuan(t.threshold_fen)}减${yuan(t.off_fen)}`).join("，");
}

function activities() {
  const render = (items) => table([
    ["名称", (a) => h("span", {}, a.name, h("div", { class: "muted small" }, a.activity_id))],
    ["规则", activityTerms],
    ["时间", (a) => `${when(a.starts_at)} – ${when(a.ends_at)}`],
    ["状态", (a) => a.status === "paused" ? badge("已暂停", "muted") : (a.running ? badge("进行中", "ok") : badge("未在时间内", ""))],
    ["操作", (a) => h("button", { type: "button", onclick: () => quick(() => patch("/v1/admin/activities/" + encodeURIComponent(a.activity_id),
      { status: a.status === "active" ? "paused" : "active" }), "已更新", () => list.reload()) }, a.status === "active" ? "暂停" : "恢复")],
  ], items, "没有活动");
  const list = pager((cursor) => get("/v1/admin/activities", { limit: 50, cursor }), render);
  return card("满减、拼团与砍价", h("button", { type: "button", class: "primary", onclick: () => activityDialog(() => list.reload()) }, "新建满减活动"), list);
}

export async function marketingPage(content) {
  mount(content, h("h1", {}, "营销活动"), flashSales(), coupons(), activities());
}

// 评价: buyers' reviews (visible, hidden, reported); reply, hide, show (dismissing reports).
import { get, post } from "./api.js";
import { h, mount, when, toast, field, select, form, dialog, card, badge, pager, table, specsText } from "./ui.js";

const path = (id) => "/v1/admin/reviews/" + encodeURIComponent(id);

function replyDialog(review, done) {
  dialog("回复评价", (close) => {
    const text = h("textarea", { rows: 3 }, review.reply?.text || "");
    return form([h("p", { class: "muted" }, review.text), field("回复内容", "text", text, "新回复会替换旧回复")], async () => {
      await post(path(review.review_id) + "/reply", { text: text.value });
      close();
      toast("已回复");
      done();
    }, "回复");
  });
}

async function toggle(review, done) {
  try {
    await post(path(review.review_id) + (review.status === "hidden" ? "/show" : "/hide"));
    toast(review.status === "hidden" ? "已显示" : "已隐藏");
    done();
  } catch (error) {
    toast(error.message, "bad");
  }
}

export async function reviewsPage(content) {
  const status = select([["", "全部"], ["reported", "被举报"], ["visible", "显示中"], ["hidden", "已隐藏"]]);
  const render = (items) => table([
    ["时间", (r) => when(r.created_at)],
    ["买家", (r) => r.nickname],
    ["评分", (r) => "★".repeat(r.rating) + "☆".repeat(5 - r.rating)],
    ["评价", (r) => h("span", {}, r.text, h("div", { class: "muted small" }, `${r.product_id} · ${specsText(r.specs)}`),
      r.reply ? h("div", { class: "small" }, "商家回复：" + r.reply.text) : null)],
    ["状态", (r) => h("span", {}, r.status === "hidden" ? badge("已隐藏", "muted") : badge("显示中", "ok"),
      r.reported ? h("div", {}, badge(`举报 ${r.report_count}`, "bad")) : null)],
    ["操作", (r) => h("div", { class: "row gap" },
      h("button", { type: "button", onclick: () => replyDialog(r, () => list.reload()) }, "回复"),
      h("button", { type: "button", onclick: () => toggle(r, () => list.reload()) }, r.status === "hidden" ? "显示" : "隐藏"),
      r.reported && r.status !== "hidden" ? h("button", { type: "button", onclick: async () => {
        try { await post(path(r.review_id) + "/show"); toast("已驳回举报"); list.reload(); } catch (error) { toast(error.message, "bad"); }
      } }, "驳回举报") : null)],
  ], items, "没有评价");
  const list = pager((cursor) => get("/v1/admin/reviews", { status: status.value || undefined, limit: 20, cursor }), render);
  status.addEventListener("change", () => list.reload());
  mount(content, h("h1", {}, "评价"), card(null, h("label", {}, "状态 ", status)), list);
}

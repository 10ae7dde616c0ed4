// 账号与日志: admin accounts with roles (owner only) and the audit log of every admin write.
import { get, post, patch } from "./api.js";
import { h, mount, when, toast, field, input, select, form, dialog, card, badge, notice, pager, table } from "./ui.js";

export const ROLES = { owner: "店主", staff: "店员" };

function accountDialog(account, done) {
  dialog(account ? "编辑账号：" + account.username : "新建账号", (close) => {
    const username = input({ value: account?.username || "", disabled: Boolean(account) });
    const password = input({ type: "password", autocomplete: "new-password", placeholder: account ? "留空则不修改" : "" });
    const role = select(Object.entries(ROLES));
    role.value = account?.role || "staff";
    return form([account ? null : field("用户名", "username", username), field("密码", "password", password),
                 field("角色", "role", role, "店员不能退款、改价、管理账号和营销")], async () => {
      if (account) {
        const body = {};
        if (role.value !== account.role) body.role = role.value;
        if (password.value) body.password = password.value;
        if (!Object.keys(body).length) { close(); return; }
        await patch("/v1/admin/accounts/" + encodeURIComponent(account.username), body);
      } else {
        await post("/v1/admin/accounts", { username: username.value, password: password.value, role: role.value });
      }
      close();
      toast("账号已保存");
      done();
    });
  });
}

function accounts() {
  const box = h("div", {});
  async function reload() {
    try {
      const items = (await get("/v1/admin/accounts")).items;
      mount(box, table([
        ["用户名", (a) => a.username], ["角色", (a) => ROLES[a.role] || a.role],
        ["状态", (a) => a.disabled ? badge("已停用", "muted") : badge("正常", "ok")], ["创建时间", (a) => when(a.created_at)],
        ["操作", (a) => h("div", { class: "row gap" },
          h("button", { type: "button", onclick: () => accountDialog(a, reload) }, "编辑"),
          h("button", { type: "button", onclick: async () => {
            try { await patch("/v1/admin/accounts/" + encodeURIComponent(a.username), { disabled: !a.disabled }); toast("已更新"); reload(); }
            catch (error) { toast(error.message, "bad"); }
          } }, a.disabled ? "启用" : "停用"))],
      ], items, "没有账号"));
    } catch (error) {
      mount(box, notice(error));
    }
  }
  reload();
  return card("管理员账号", h("button", { type: "button", class: "primary", onclick: () => accountDialog(null, reload) }, "新建账号"), box);
}

function audit() {
  const actor = input({ placeholder: "操作人" });
  const target = input({ placeholder: "对象，如 order:订单号" });
  const show = (value) => value === undefined || value === null ? "" : h("code", { class: "small" }, JSON.stringify(value));
  const list = pager((cursor) => get("/v1/admin/audit", { actor: actor.value.trim() || undefined, target: target.value.trim() || undefined,
    limit: 50, cursor }), (items) => table([
    ["时间", (a) => when(a.at)], ["操作人", (a) => `${a.actor}（${ROLES[a.role] || a.role}）`], ["操作", (a) => a.action],
    ["对象", (a) => a.target], ["修改前", (a) => show(a.before)], ["修改后", (a) => show(a.after)],
  ], items, "没有记录"));
  const filter = h("form", { class: "row gap", onsubmit: (event) => { event.preventDefault(); list.reload(); } },
    actor, target, h("button", { type: "submit" }, "筛选"));
  return card("操作日志", filter, list);
}

export async function accountsPage(content) {
  mount(content, h("h1", {}, "账号与日志"), accounts(), audit());
}

// The console's shell: login, the navigation and a hash router (#/orders, #/orders/<id>, ...).
import { ApiError, get, post, session, whenUnauthorized } from "./api.js";
import { h, mount, field, input, form } from "./ui.js";
import { dashboardPage } from "./dashboard.js";
import { productsPage } from "./products.js";
import { ordersPage, orderDetailPage } from "./orders.js";
import { afterSalesPage } from "./after_sales.js";
import { marketingPage } from "./marketing.js";
import { storesPage } from "./stores.js";
import { alertsPage } from "./alerts.js";
import { categoriesPage } from "./categories.js";
import { reviewsPage } from "./reviews.js";
import { accountsPage, ROLES } from "./accounts.js";

const PAGES = [
  ["dashboard", "概览", dashboardPage],
  ["products", "商品与库存", productsPage],
  ["categories", "类目", categoriesPage],
  ["orders", "订单", ordersPage],
  ["after-sales", "售后", afterSalesPage],
  ["reviews", "评价", reviewsPage],
  ["marketing", "营销活动", marketingPage],
  ["stores", "门店", storesPage],
  ["alerts", "告警", alertsPage],
  ["accounts", "账号与日志", accountsPage],
];

const root = document.getElementById("root");

function route() {
  const [path, queryText] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  return { name: name || "dashboard", params: rest.map(decodeURIComponent), query: new URLSearchParams(queryText || "") };
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function loginPage() {
  const username = input({ name: "username", autocomplete: "username" });
  const password = input({ name: "password", type: "password", autocomplete: "current-password" });
  const loginForm = form([
    field("账号", "username", username),
    field("密码", "password", password),
  ], async () => {
    const reply = await post("/v1/admin/auth/login", { username: username.value, password: password.value });
    session.set(reply.token, username.value);
    try {  // the role, for the sidebar (GET /v1/admin/me)
      const me = await get("/v1/admin/me");
      session.set(reply.token, `${me.username}（${ROLES[me.role] || me.role}）`);
    } catch (error) { /* an API without roles: the username alone */ }
    go("#/dashboard");
  }, "登录");
  mount(root, h("main", { class: "login" },
    h("div", { class: "card login-card" }, h("h1", {}, "商家后台"), h("p", { class: "muted" }, "使用管理员账号登录"), loginForm)));
  username.focus();
}

function layout(current) {
  const content = h("main", { class: "content", id: "content" });
  const nav = h("nav", { class: "sidebar" },
    h("div", { class: "brand" }, "商家后台"),
    PAGES.map(([name, label]) => h("a", { href: "#/" + name, class: name === current ? "active" : "" }, label)),
    h("div", { class: "who" },
      h("span", {}, session.user),
      h("button", { type: "button", class: "link", onclick: logout }, "退出登录")));
  mount(root, h("div", { class: "shell" }, nav, content));
  return content;
}

async function logout() {
  try { await post("/v1/admin/auth/logout"); } catch (error) { /* the token may be gone already */ }
  session.clear();
  go("#/login");
}

async function render() {
  const { name, params, query } = route();
  if (!session.token || name === "login") {
    if (session.token) { go("#/dashboard"); return; }
    loginPage();
    return;
  }
  const page = PAGES.find(([key]) => key === name);
  const content = layout(page ? name : "dashboard");
  try {
    if (name === "orders" && params[0]) await orderDetailPage(content, params[0]);
    else await (page ? page[2] : dashboardPage)(content, params, query);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    mount(content, h("div", { class: "notice error", role: "alert" }, error.message));
  }
}

whenUnauthorized(() => { session.clear(); go("#/login"); });
window.addEventListener("hashchange", render);
render();

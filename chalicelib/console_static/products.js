// 商品与库存: the list with SKUs and stock counters, create (with SKUs), edit, on/off sale, stock.
import { get, patch, post } from "./api.js";
import { h, mount, yuan, toFen, toInt, specsText, toast, field, input, select, form, dialog, card, notice, badge } from "./ui.js";

// GET /v1/admin/products (every product, off-sale included); while the API lacks it, the buyers'
// list (on-sale products) with each product's admin view.
async function loadProducts(filters) {
  try {
    const items = [];
    let cursor = null;
    for (let page = 0; page < 20; page += 1) {
      const reply = await get("/v1/admin/products", { limit: 50, cursor, ...filters });
      items.push(...reply.items);
      cursor = reply.next_cursor;
      if (!cursor) break;
    }
    return { items, partial: false };
  } catch (error) {
    if (!error.missingRoute) throw error;
  }
  const summaries = [];
  let cursor = null;
  for (let page = 0; page < 10; page += 1) {
    const reply = await get("/v1/products", { limit: 50, cursor, sort: "newest", category_id: filters.category_id });
    summaries.push(...reply.items);
    cursor = reply.next_cursor;
    if (!cursor) break;
  }
  const details = await Promise.all(summaries.map((item) => get("/v1/admin/products/" + encodeURIComponent(item.product_id))));
  return { items: details.filter((p) => filters.on_sale === undefined || String(p.on_sale) === filters.on_sale), partial: true };
}

async function loadCategories() {
  let tree;
  try { tree = (await get("/v1/admin/categories")).items; } catch (error) { tree = (await get("/v1/categories")).items; }
  const flat = [];
  const walk = (nodes, prefix) => nodes.forEach((node) => {
    flat.push([node.category_id, prefix + node.name + (node.hidden ? "（已隐藏）" : "")]);
    walk(node.children || [], prefix + node.name + " / ");
  });
  walk(tree, "");
  return flat;
}

// "重量:1kg, 颜色:红" -> {重量: "1kg", 颜色: "红"}; text that is not such pairs is sent as typed,
// for the API to refuse with its own message.
function parseSpecs(text) {
  const trimmed = text.trim();
  if (!trimmed) return {};
  const specs = {};
  for (const part of trimmed.split(/[,，;；]/).map((p) => p.trim()).filter(Boolean)) {
    const at = part.search(/[:：]/);
    if (at <= 0) return trimmed;
    specs[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return specs;
}

const specsInput = (specs) => input({ value: Object.entries(specs || {}).map(([k, v]) => `${k}:${v}`).join(", "), placeholder: "重量:1kg, 等级:特级" });

function skuRow(index, remove) {
  const prefix = `skus.${index}`;
  const row = h("fieldset", { class: "sku-row" },
    h("legend", {}, `规格 ${index + 1}`),
    field("规格", `${prefix}.specs`, specsInput({})),
    field("售价（元）", `${prefix}.price_fen`, input({ inputmode: "decimal", placeholder: "59.90" })),
    field("划线价（元）", `${prefix}.market_price_fen`, input({ inputmode: "decimal" })),
    field("库存", `${prefix}.stock`, input({ inputmode: "numeric", value: "0" })),
    field("低库存提醒", `${prefix}.low_stock_threshold`, input({ inputmode: "numeric", value: "0" })),
    remove ? h("button", { type: "button", class: "link danger", onclick: () => remove(row) }, "删除此规格") : null);
  return row;
}

function readSku(row, index) {
  const value = (name) => row.querySelector(`[data-field="skus.${index}.${name}"]:not(.field)`).value;
  const sku = { specs: parseSpecs(value("specs")), price_fen: toFen(value("price_fen")), stock: toInt(value("stock")),
                low_stock_threshold: toInt(value("low_stock_threshold")) ?? 0 };
  const market = toFen(value("market_price_fen"));
  if (market !== null) sku.market_price_fen = market;
  return sku;
}

function createDialog(categories, done) {
  dialog("新建商品", (close) => {
    const name = input({ name: "name" });
    const category = select(categories, { name: "category_id" });
    const description = h("textarea", { rows: 3 });
    const virtual = h("input", { type: "checkbox" });
    const rows = h("div", { class: "sku-rows" });
    const renumber = () => [...rows.children].forEach((row, index) => {
      row.querySelector("legend").textContent = `规格 ${index + 1}`;
      row.querySelectorAll("[data-field]").forEach((element) => {
        element.dataset.field = element.dataset.field.replace(/^skus\.\d+/, `skus.${index}`);
      });
      row.querySelectorAll("[data-error-for]").forEach((element) => {
        element.dataset.errorFor = element.dataset.errorFor.replace(/^skus\.\d+/, `skus.${index}`);
      });
    });
    const remove = (row) => { if (rows.children.length > 1) { row.remove(); renumber(); } };
    rows.append(skuRow(0, remove));
    return form([
      field("商品名称", "name", name),
      field("类目", "category_id", category),
      field("描述", "description", description),
      h("label", { class: "check" }, virtual, " 虚拟商品（无需发货）"),
      rows,
      h("button", { type: "button", class: "link", onclick: () => { rows.append(skuRow(rows.children.length, remove)); } }, "＋ 添加规格"),
    ], async () => {
      const body = { name: name.value, category_id: category.value, virtual: virtual.checked,
                     skus: [...rows.children].map(readSku) };
      if (description.value.trim()) body.description = description.value;
      const created = await post("/v1/admin/products", body);
      close();
      toast("商品已创建：" + body.name);
      done(created.product_id);
    }, "创建商品");
  });
}

function editDialog(product, categories, done) {
  dialog("编辑商品", (close) => {
    const name = input({ value: product.name });
    const category = select(categories);
    category.value = product.category_id;
    const description = h("textarea", { rows: 3 }, product.description || "");
    return form([field("商品名称", "name", name), field("类目", "category_id", category), field("描述", "description", description)],
      async () => {
        await patch("/v1/admin/products/" + encodeURIComponent(product.product_id),
                    { name: name.value, category_id: category.value, description: description.value });
        close();
        toast("已保存");
        done();
      });
  });
}

function skuDialog(sku, done) {
  dialog("编辑规格", (close) => {
    const specs = specsInput(sku.specs);
    const price = input({ value: (sku.price_fen / 100).toFixed(2), inputmode: "decimal" });
    const market = input({ value: sku.market_price_fen ? (sku.market_price_fen / 100).toFixed(2) : "", inputmode: "decimal" });
    const threshold = input({ value: String(sku.low_stock_threshold ?? 0), inputmode: "numeric" });
    return form([field("规格", "specs", specs), field("售价（元）", "price_fen", price),
                 field("划线价（元）", "market_price_fen", market, "留空表示不显示划线价"),
                 field("低库存提醒", "low_stock_threshold", threshold)], async () => {
      const body = { specs: parseSpecs(specs.value), price_fen: toFen(price.value), market_price_fen: toFen(market.value) ?? 0,
                     low_stock_threshold: toInt(threshold.value) };
      await patch("/v1/admin/skus/" + encodeURIComponent(sku.sku_id), body);
      close();
      toast("规格已保存");
      done();
    });
  });
}

function stockDialog(sku, done) {
  dialog("调整库存", (close) => {
    const mode = select([["delta", "增减（正数入库，负数出库）"], ["absolute", "盘点（设为此数量）"]]);
    const amount = input({ inputmode: "numeric", placeholder: "例如 10 或 -3" });
    const reason = select([["restock", "补货入库"], ["count", "盘点"], ["damage", "损耗"], ["return", "退货入库"], ["other", "其他"]]);
    const amountField = field("数量", "delta", amount);
    mode.addEventListener("change", () => {
      const name = mode.value;
      amount.dataset.field = name;
      amountField.dataset.field = name;
      amountField.querySelector(".field-error").dataset.errorFor = name;
    });
    return form([h("p", { class: "muted" }, `${specsText(sku.specs)}：可售 ${sku.available}，已占用 ${sku.reserved ?? "-"}，已售 ${sku.sold ?? "-"}`),
                 field("方式", "mode", mode), amountField, field("原因", "reason", reason)], async () => {
      await patch("/v1/admin/skus/" + encodeURIComponent(sku.sku_id) + "/stock", { [mode.value]: toInt(amount.value), reason: reason.value });
      close();
      toast("库存已调整");
      done();
    });
  });
}

async function toggle(path, onSale, done) {
  try {
    await patch(path, { on_sale: onSale });
    toast(onSale ? "已上架" : "已下架");
    done();
  } catch (error) {
    toast(error.message, "bad");
  }
}

export async function productsPage(content) {
  const categories = await loadCategories();
  const names = Object.fromEntries(categories);
  const filters = {};
  const list = h("div", {}, h("p", { class: "muted" }, "加载中…"));
  const statusFilter = select([["", "全部状态"], ["true", "在售"], ["false", "已下架"]]);
  const categoryFilter = select([["", "全部类目"], ...categories]);

  async function reload() {
    filters.on_sale = statusFilter.value || undefined;
    filters.category_id = categoryFilter.value || undefined;
    try {
      const { items, partial } = await loadProducts(filters);
      mount(list, partial ? h("p", { class: "muted small" }, "（商品管理列表接口尚未上线：仅显示在售商品）") : null,
            items.length ? items.map(productCard) : h("p", { class: "empty muted" }, "暂无商品"));
    } catch (error) {
      mount(list, notice(error));
    }
  }

  function productCard(product) {
    const productPath = "/v1/admin/products/" + encodeURIComponent(product.product_id);
    return h("section", { class: "card product", dataset: { id: product.product_id } },
      h("header", { class: "row" },
        h("div", {}, h("h3", {}, product.name), h("span", { class: "muted small" }, (names[product.category_id] || product.category_id) + " · " + product.product_id),
          product.virtual ? badge("虚拟", "info") : null),
        h("div", { class: "row gap" }, product.on_sale ? badge("在售", "ok") : badge("已下架", "muted"),
          h("button", { type: "button", onclick: () => editDialog(product, categories, reload) }, "编辑"),
          h("button", { type: "button", onclick: () => toggle(productPath, !product.on_sale, reload) }, product.on_sale ? "下架" : "上架"))),
      h("table", { class: "skus" },
        h("thead", {}, h("tr", {}, ["规格", "售价", "可售", "已占用", "已售", "已分配", "状态", "操作"].map((label) => h("th", {}, label)))),
        h("tbody", {}, product.skus.map((sku) => h("tr", { dataset: { sku: sku.sku_id } },
          h("td", {}, specsText(sku.specs), h("div", { class: "muted small" }, sku.sku_id)),
          h("td", {}, yuan(sku.price_fen)),
          h("td", { class: sku.available <= (sku.low_stock_threshold || 0) ? "low" : "" }, String(sku.available)),
          h("td", {}, String(sku.reserved ?? "-")), h("td", {}, String(sku.sold ?? "-")), h("td", {}, String(sku.allocated ?? "-")),
          h("td", {}, sku.on_sale ? badge("在售", "ok") : badge("已下架", "muted")),
          h("td", { class: "ops" },
            h("button", { type: "button", onclick: () => stockDialog(sku, reload) }, "调库存"),
            h("button", { type: "button", onclick: () => skuDialog(sku, reload) }, "改价/规格"),
            h("button", { type: "button", onclick: () => toggle("/v1/admin/skus/" + encodeURIComponent(sku.sku_id), !sku.on_sale, reload) },
              sku.on_sale ? "下架" : "上架")))))));
  }

  statusFilter.addEventListener("change", reload);
  categoryFilter.addEventListener("change", reload);
  mount(content,
    h("div", { class: "row" }, h("h1", {}, "商品与库存"),
      h("button", { type: "button", class: "primary", onclick: () => createDialog(categories, reload) }, "新建商品")),
    card(null, h("div", { class: "row gap filters" }, statusFilter, categoryFilter)),
    list);
  await reload();
}

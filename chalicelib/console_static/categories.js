// 类目: the whole tree, hidden ones included; create, rename, move (3 levels at most), hide.
import { get, post, patch } from "./api.js";
import { h, mount, toast, field, input, select, form, dialog, card, badge } from "./ui.js";

const path = (id) => "/v1/admin/categories/" + encodeURIComponent(id);

function flatten(nodes, out = [], trail = "") {
  for (const node of nodes) {
    out.push({ ...node, label: trail + node.name });
    flatten(node.children || [], out, trail + node.name + " / ");
  }
  return out;
}

function descendants(node) {
  return [node.category_id, ...(node.children || []).flatMap(descendants)];
}

function parentChoices(all, node) {
  const excluded = new Set(node ? descendants(node) : []);
  return [["", "（顶级类目）"], ...all.filter((c) => c.level < 3 && !excluded.has(c.category_id)).map((c) => [c.category_id, c.label])];
}

function createDialog(all, done) {
  dialog("新建类目", (close) => {
    const name = input({});
    const parent = select(parentChoices(all, null));
    return form([field("类目名称", "name", name), field("上级类目", "parent_id", parent)], async () => {
      const body = { name: name.value };
      if (parent.value) body.parent_id = parent.value;
      await post("/v1/admin/categories", body);
      close();
      toast("类目已创建");
      done();
    }, "创建");
  });
}

function editDialog(node, all, done) {
  dialog("编辑类目：" + node.name, (close) => {
    const name = input({ value: node.name });
    const parent = select(parentChoices(all, node));
    parent.value = node.parent_id || "";
    return form([field("类目名称", "name", name), field("上级类目", "parent_id", parent, "移动时其下的子类目和商品一起移动")], async () => {
      const body = {};
      if (name.value !== node.name) body.name = name.value;
      if (parent.value !== (node.parent_id || "")) body.parent_id = parent.value;
      if (!Object.keys(body).length) { close(); return; }
      await patch(path(node.category_id), body);
      close();
      toast("类目已保存");
      done();
    });
  });
}

export async function categoriesPage(content) {
  const box = h("div", {});
  async function reload() {
    const tree = (await get("/v1/admin/categories")).items;
    const all = flatten(tree);
    const row = (node) => h("li", { dataset: { id: node.category_id } },
      h("div", { class: "tree-row" },
        h("span", { class: node.hidden ? "muted" : "" }, node.name), " ", h("span", { class: "muted small" }, node.category_id),
        node.hidden ? badge("已隐藏", "muted") : null,
        h("span", { class: "tree-ops" },
          h("button", { type: "button", class: "link", onclick: () => editDialog(node, all, reload) }, "重命名/移动"),
          h("button", { type: "button", class: "link", onclick: async () => {
            try { await patch(path(node.category_id), { hidden: !node.hidden }); toast(node.hidden ? "已显示" : "已隐藏"); reload(); }
            catch (error) { toast(error.message, "bad"); }
          } }, node.hidden ? "显示" : "隐藏"))),
      node.children?.length ? h("ul", {}, node.children.map(row)) : null);
    mount(box,
      h("div", { class: "row" }, h("p", { class: "muted small" }, "隐藏的类目及其子类目不再出现在买家端，商品保留。最多三级。"),
        h("button", { type: "button", class: "primary", onclick: () => createDialog(all, reload) }, "新建类目")),
      tree.length ? h("ul", { class: "tree" }, tree.map(row)) : h("p", { class: "empty muted" }, "还没有类目"));
  }
  mount(content, h("h1", {}, "类目"), card(null, box));
  await reload();
}

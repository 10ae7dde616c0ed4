// 门店: list, create, edit, hide (GET/POST /v1/admin/stores, PATCH /v1/admin/stores/{store_id}).
import { get, post, patch } from "./api.js";
import { h, mount, toast, field, input, form, dialog, card, badge, notice, table } from "./ui.js";

const number = (text) => {
  const trimmed = String(text).trim();
  return trimmed === "" ? null : (Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed);
};

function storeDialog(store, done) {
  dialog(store ? "编辑门店" : "新建门店", (close) => {
    const s = store || {};
    const name = input({ value: s.name || "" });
    const address = input({ value: s.address || "" });
    const lat = input({ value: s.lat ?? "", inputmode: "decimal", placeholder: "31.19" });
    const lng = input({ value: s.lng ?? "", inputmode: "decimal", placeholder: "121.43" });
    const phone = input({ value: s.phone || "" });
    const hours = input({ value: s.hours || "", placeholder: "08:00-22:00" });
    return form([field("门店名称", "name", name), field("地址", "address", address), field("纬度", "lat", lat), field("经度", "lng", lng),
                 field("电话", "phone", phone), field("营业时间", "hours", hours)], async () => {
      const body = { name: name.value, address: address.value, lat: number(lat.value), lng: number(lng.value) };
      if (phone.value.trim()) body.phone = phone.value.trim();
      if (hours.value.trim()) body.hours = hours.value.trim();
      if (store) await patch("/v1/admin/stores/" + encodeURIComponent(store.store_id), body);
      else await post("/v1/admin/stores", body);
      close();
      toast("门店已保存");
      done();
    });
  });
}

async function setHidden(store, hidden, done) {
  try {
    await patch("/v1/admin/stores/" + encodeURIComponent(store.store_id), { hidden });
    toast(hidden ? "已隐藏" : "已显示");
    done();
  } catch (error) {
    toast(error.message, "bad");
  }
}

export async function storesPage(content) {
  const list = h("div", {});
  async function reload() {
    let stores;
    let note = null;
    try {
      stores = (await get("/v1/admin/stores", { limit: 50 })).items;
    } catch (error) {
      if (!error.missingRoute) { mount(list, notice(error)); return; }
      stores = (await get("/v1/stores", { limit: 50 })).items;
      note = h("p", { class: "muted small" }, "（门店管理接口尚未上线：仅显示买家可见的门店，暂不能编辑）");
    }
    mount(list, note, table([
      ["门店", (s) => h("span", {}, s.name, h("div", { class: "muted small" }, s.store_id))],
      ["地址", (s) => s.address], ["营业时间", (s) => s.hours || "-"], ["电话", (s) => s.phone || "-"],
      ["坐标", (s) => s.lat != null ? `${s.lat}, ${s.lng}` : "-"],
      ["状态", (s) => s.hidden ? badge("已隐藏", "muted") : badge("营业中", "ok")],
      ["操作", (s) => note ? "" : h("div", { class: "row gap" },
        h("button", { type: "button", onclick: () => storeDialog(s, reload) }, "编辑"),
        h("button", { type: "button", onclick: () => setHidden(s, !s.hidden, reload) }, s.hidden ? "显示" : "隐藏"))],
    ], stores, "还没有门店"));
  }
  mount(content, h("div", { class: "row" }, h("h1", {}, "门店"),
    h("button", { type: "button", class: "primary", onclick: () => storeDialog(null, reload) }, "新建门店")), card(null, list));
  await reload();
}

// HTTP to the admin API: the token, JSON, and the error envelope {Code, Message, Details}.
import config from "./config.js";

const TOKEN_KEY = "console.token";
const USER_KEY = "console.user";

export function apiBase() {
  if (config.apiBase) return config.apiBase.replace(/\/$/, "");
  const path = location.pathname;
  const at = path.lastIndexOf("/console");
  return location.origin + (at >= 0 ? path.slice(0, at) : "");
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
  }
  // A route the running API does not have yet (Chalice answers outside the envelope).
  get missingRoute() {
    return this.code === "route_missing";
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get user() { return sessionStorage.getItem(USER_KEY) || ""; },
  set(token, user) { sessionStorage.setItem(TOKEN_KEY, token); sessionStorage.setItem(USER_KEY, user); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(USER_KEY); },
};

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

export async function request(method, path, body, query) {
  let url = apiBase() + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, value);
    }
    const text = params.toString();
    if (text) url += "?" + text;
  }
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session.token) headers["Authorization"] = "Bearer " + session.token;
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "network_error", "无法连接服务器，请检查网络后重试", []);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (error) { data = null; }
  if (response.ok) return data;
  // Chalice's own answers for a route it does not know (403/404/405, CamelCase codes or none): the
  // app's errors are the envelope with snake_case codes.
  const chaliceOwn = !data || typeof data.Code !== "string" || /^[A-Z][A-Za-z]+Error$/.test(data.Code);
  if ([403, 404, 405].includes(response.status) && chaliceOwn) {
    throw new ApiError(response.status, "route_missing", "后端尚未提供此接口：" + method + " " + path, []);
  }
  if (data && typeof data.Code === "string" && typeof data.Message === "string") {
    if (response.status === 401 && path !== "/v1/admin/auth/login") onUnauthorized();
    throw new ApiError(response.status, data.Code, data.Message, data.Details);
  }
  throw new ApiError(response.status, "http_" + response.status, "服务器错误（HTTP " + response.status + "）", []);
}

export const get = (path, query) => request("GET", path, undefined, query);
export const post = (path, body) => request("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => request("PATCH", path, body);

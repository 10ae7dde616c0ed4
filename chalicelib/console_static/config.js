// The API the console calls. null: the console's own origin and path prefix (served by the app at
// /console/). Hosted elsewhere (S3 + CloudFront, infra/build_template.py), replace this file with
// e.g. `export default { apiBase: "https://api.example.com/api" };` and list that console origin
// in the app's CORS_ALLOW_ORIGINS.
export default { apiBase: null };

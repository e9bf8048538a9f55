// The official openai npm package against diffuse serve (TestServeOpenAINodeClient).
// Env: BASE_URL (http://host:port), API_KEY, IMAGE and MASK (PNG paths);
// prints one JSON object with what came back.
const fs = require("fs");
const OpenAI = require("openai");
const { toFile } = require("openai");

async function main() {
  const client = new OpenAI({ baseURL: process.env.BASE_URL + "/v1", apiKey: process.env.API_KEY, maxRetries: 0 });
  const out = {};
  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);
  const gen = await client.images.generate({
    model: "tiny-pipeline", prompt: "a lighthouse at dawn", n: 2, size: "32x32", response_format: "b64_json",
  });
  out.generate = gen.data.map((d) => d.b64_json);
  const url = await client.images.generate({ model: "fmnist", prompt: "sneaker", size: "56x56", response_format: "url" });
  out.url = url.data.map((d) => d.url);
  const edit = await client.images.edit({
    model: "tiny-pipeline", prompt: "a door", size: "32x32", response_format: "b64_json", n: 1,
    image: await toFile(fs.readFileSync(process.env.IMAGE), "image.png", { type: "image/png" }),
    mask: await toFile(fs.readFileSync(process.env.MASK), "mask.png", { type: "image/png" }),
  });
  out.edit = edit.data.map((d) => d.b64_json);
  try {
    await client.images.generate({ model: "dall-e-3", prompt: "x" });
    out.error = "no error";
  } catch (e) {
    out.error = { status: e.status, code: e.code, type: e.type, message: e.message };
  }
  const bad = new OpenAI({ baseURL: process.env.BASE_URL + "/v1", apiKey: "wrong", maxRetries: 0 });
  try {
    await bad.models.list();
    out.auth = "no error";
  } catch (e) {
    out.auth = { status: e.status, code: e.code };
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

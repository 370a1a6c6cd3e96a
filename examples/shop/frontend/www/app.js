// SPDX-License-Identifier: GPL-3.0-or-later
// Lists the catalogue and orders one item per click, through the CGI proxy.
async function api(path, body) {
  const options = body ? { method: "POST", body: JSON.stringify(body) } : {};
  const response = await fetch("/cgi-bin/api" + path, options);
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

async function load() {
  const status = document.getElementById("status");
  const { products } = await api("/products");
  const list = document.getElementById("products");
  for (const product of products) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = "Order";
    button.onclick = async () => {
      const order = await api("/orders", { items: [{ sku: product.sku, qty: 1 }] });
      status.textContent = "Order " + order.id + " placed";
    };
    item.append(product.name + " ", button);
    list.append(item);
  }
  status.textContent = "";
}

load().catch((error) => { document.getElementById("status").textContent = error.message; });

-- links.lua: pandoc filter of make docs. Links between the Markdown documents point to their HTML
-- renderings, and the night's overview (wide) gets a landscape page of its own in the PDF; the
-- servers diagram is drawn narrow enough for a portrait page in 10 pt type.
function Link(el)
  if not el.target:match("://") then
    el.target = el.target:gsub("%.md$", ".html"):gsub("%.md#", ".html#")
  end
  return el
end

function Para(el)
  if #el.content == 1 and el.content[1].t == "Image" and el.content[1].src:match("overview%.svg$") then
    return pandoc.Div({ el }, { class = "wide" })
  end
end

-- 0004: reserved for another branch's migration (placeholder on the `ha` branch only; the merge replaces it).
SELECT 1;

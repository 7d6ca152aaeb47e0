package fixtures.pkg;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class Generics<K extends Comparable<K>, V> {
    private final Map<K, List<V>> buckets = new HashMap<>();

    public void put(K key, V value) {
        buckets.computeIfAbsent(key, k -> new ArrayList<>()).add(value);
    }

    public List<V> get(K key) {
        List<V> found = buckets.get(key);
        return found == null ? new ArrayList<V>() : found;
    }

    public int size() {
        int total = 0;
        for (List<V> values : buckets.values()) {
            total += values.size();
        }
        return total;
    }

    public boolean isLess(int a, int b) {
        return a < b;
    }

    public Map<String, Map<String, List<Integer>>> deep() {
        return new HashMap<String, Map<String, List<Integer>>>();
    }
}

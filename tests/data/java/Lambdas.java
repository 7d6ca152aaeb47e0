package fixtures.lambdas;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.StringReader;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Collectors;

@FunctionalInterface
interface Transformer<T, R> {
    R apply(T input);
}

@SuppressWarnings({"unchecked", "rawtypes"})
public class Lambdas {
    @Deprecated(since = "1.2", forRemoval = true)
    public List<String> upper(List<String> words) {
        return words.stream()
                .filter(w -> w != null && !w.isEmpty())
                .map(String::toUpperCase)
                .collect(Collectors.toList());
    }

    public <T extends Comparable<T>> T max(List<T> items) {
        return items.stream().reduce((a, b) -> a.compareTo(b) >= 0 ? a : b).orElse(null);
    }

    public int countLines(String text) throws IOException {
        int count = 0;
        try (BufferedReader reader = new BufferedReader(new StringReader(text)); StringReader extra = new StringReader("")) {
            while (reader.readLine() != null) {
                count++;
            }
        }
        return count;
    }

    public Function<Integer, Integer> adder(int amount) {
        Transformer<Integer, Integer> twice = x -> x * 2;
        return value -> {
            int doubled = twice.apply(value);
            return doubled + amount;
        };
    }

    @Override
    public String toString() {
        Runnable task = () -> System.out.println("run()");
        task.run();
        return String.format("Lambdas[%d]", hashCode());
    }
}

package fixtures.unicode;

/** Identifiers may use any Unicode letter: größe, 名前, π. */
public class Unicode {
    private double größe = 1.5;
    private String 名前 = "東京タワー";
    private static final double π = 3.14159;
    private int café = 0;

    public double fläche(double radius) {
        // Umfang und Fläche: ∑ über alle Kreise
        double ergebnis = π * radius * radius;
        return ergebnis + größe;
    }

    public String grüße(String wer) {
        String emoji = "😀 " + wer;
        return 名前 + ": " + emoji;
    }

    public int zähle() {
        café += 1;
        return café;
    }
}

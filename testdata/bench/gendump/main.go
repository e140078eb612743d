// Command gendump writes a realistic MySQL-style SQL dump of about SIZE bytes: a CREATE TABLE per
// table, then extended INSERTs with names, e-mail addresses, amounts, dates, addresses, user
// agents and free text. It compresses about 5 times with gzip -6, like a real shop database, and
// the same SIZE and seed always give the same bytes, so the benchmark's files can be cached.
//
//	gendump -size 512M -o /var/tmp/archive-bench/dump-512M.sql
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

func main() {
	size := flag.String("size", "64M", "target size: bytes, or with K, M or G (powers of 1024)")
	out := flag.String("o", "-", "output file (- for standard output)")
	seed := flag.Uint64("seed", 1, "random seed (the same seed and size give the same file)")
	flag.Parse()
	n, err := parseSize(*size)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gendump: -size: %v\n", err)
		os.Exit(2)
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintf(os.Stderr, "gendump: %v\n", err)
			os.Exit(1)
		}
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	g := &gen{w: bw, rnd: *seed*0x9E3779B97F4A7C15 | 1}
	g.dump(n)
	if err = bw.Flush(); err == nil && f != nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gendump: %v\n", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size like 64M", s)
	}
	return v * mult, nil
}

type gen struct {
	w       *bufio.Writer
	rnd     uint64
	written int64
	buf     []byte
}

// next is xorshift64*: fast, and the same sequence on every machine.
func (g *gen) next() uint64 {
	g.rnd ^= g.rnd >> 12
	g.rnd ^= g.rnd << 25
	g.rnd ^= g.rnd >> 27
	return g.rnd * 2685821657736338717
}

func (g *gen) intn(n int) int { return int(g.next() % uint64(n)) }

func (g *gen) pick(list []string) string { return list[g.intn(len(list))] }

func (g *gen) str(s string) { g.buf = append(g.buf, s...) }

func (g *gen) num(n int) { g.buf = strconv.AppendInt(g.buf, int64(n), 10) }

func (g *gen) flush() {
	g.w.Write(g.buf)
	g.written += int64(len(g.buf))
	g.buf = g.buf[:0]
}

// table is one table of the dump: its DDL, its share of the dump's bytes and a row writer.
type table struct {
	name, ddl string
	share     float64
	row       func(g *gen, id int)
}

func (g *gen) dump(target int64) {
	g.str("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: shop\n")
	g.str("-- ------------------------------------------------------\n-- Server version\t8.0.36\n\n")
	g.str("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!50503 SET NAMES utf8mb4 */;\n")
	g.str("/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\n")
	g.flush()
	for _, t := range tables {
		g.str("--\n-- Table structure for table `" + t.name + "`\n--\n\nDROP TABLE IF EXISTS `" + t.name + "`;\n")
		g.str(t.ddl)
		g.str("\n--\n-- Dumping data for table `" + t.name + "`\n--\n\nLOCK TABLES `" + t.name + "` WRITE;\n")
		g.str("/*!40000 ALTER TABLE `" + t.name + "` DISABLE KEYS */;\n")
		g.flush()
		stop := g.written + int64(float64(target)*t.share)
		for id := 1; g.written < stop; {
			g.str("INSERT INTO `" + t.name + "` VALUES ")
			for i := 0; i < 200; i, id = i+1, id+1 {
				if i > 0 {
					g.str(",")
				}
				g.str("(")
				g.num(id)
				t.row(g, id)
				g.str(")")
			}
			g.str(";\n")
			g.flush()
		}
		g.str("/*!40000 ALTER TABLE `" + t.name + "` ENABLE KEYS */;\nUNLOCK TABLES;\n\n")
		g.flush()
	}
	g.str("/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n\n-- Dump completed on 2026-11-28  2:00:01\n")
	g.flush()
}

// two appends n as two digits.
func (g *gen) two(n int) { g.buf = append(g.buf, byte('0'+n/10%10), byte('0'+n%10)) }

// date appends a quoted DATETIME, t seconds after 2019-01-01 (days of 28-31 days are close
// enough: months have 28 days here, which keeps the generator simple and fast).
func (g *gen) date(t int) {
	day, s := t/86400, t%86400
	g.str("'")
	g.num(2019 + day/336)
	g.str("-")
	g.two(1 + day%336/28)
	g.str("-")
	g.two(1 + day%28)
	g.str(" ")
	g.two(s / 3600)
	g.str(":")
	g.two(s / 60 % 60)
	g.str(":")
	g.two(s % 60)
	g.str("'")
}

// cents appends an amount with two decimals.
func (g *gen) cents(c int) {
	g.num(c / 100)
	g.str(".")
	g.two(c % 100)
}

// popular picks 1..n with small numbers far more likely, as best-selling products and loyal
// customers are.
func (g *gen) popular(n int) int { return 1 + g.intn(1+g.intn(n)) }

// price is the fixed price of product p, in cents.
func price(p int) int { return 199 + p*7919%49800 }

func (g *gen) words(n int) {
	for i := 0; i < n; i++ {
		if i > 0 {
			g.str(" ")
		}
		g.str(g.pick(lorem))
	}
}

// Rows are numbered from 1 and dated in id order, as a shop's tables are: a customer registered
// every 2 minutes, an order every 37 seconds, a request every 3 seconds.
var tables = []table{
	{"customers", "CREATE TABLE `customers` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `first_name` varchar(64) NOT NULL,\n" +
		"  `last_name` varchar(64) NOT NULL,\n  `email` varchar(255) NOT NULL,\n  `phone` varchar(32) DEFAULT NULL,\n" +
		"  `street` varchar(255) DEFAULT NULL,\n  `city` varchar(64) DEFAULT NULL,\n  `zip` varchar(16) DEFAULT NULL,\n" +
		"  `created_at` datetime NOT NULL,\n  `active` tinyint(1) NOT NULL DEFAULT '1',\n  PRIMARY KEY (`id`),\n" +
		"  UNIQUE KEY `email` (`email`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;\n", 0.12,
		func(g *gen, id int) {
			first, last := g.pick(firstNames), g.pick(lastNames)
			g.str(",'" + first + "','" + last + "','" + strings.ToLower(first) + "." + strings.ToLower(last))
			g.num(g.intn(100))
			g.str("@" + g.pick(domains) + "','+33 6 ")
			for i := 0; i < 4; i++ {
				g.two(g.intn(100))
				if i < 3 {
					g.str(" ")
				}
			}
			g.str("','")
			g.num(1 + g.intn(120))
			g.str(" " + g.pick(streets) + "','")
			c := g.intn(len(cities))
			g.str(cities[c] + "','")
			g.num(10000 + c*1000 + g.intn(10)*10)
			g.str("',")
			g.date(id*120 + g.intn(120))
			if g.intn(10) == 0 { // one customer in ten is inactive
				g.str(",0")
			} else {
				g.str(",1")
			}
		}},
	{"products", "CREATE TABLE `products` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `sku` varchar(32) NOT NULL,\n" +
		"  `name` varchar(255) NOT NULL,\n  `description` text,\n  `price` decimal(10,2) NOT NULL,\n" +
		"  `stock` int NOT NULL DEFAULT '0',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n", 0.06,
		func(g *gen, id int) {
			g.str(",'SKU-")
			g.num(100000 + id)
			g.str("','" + g.pick(adjectives) + " " + g.pick(nouns) + "','")
			g.words(12 + g.intn(30))
			g.str("',")
			g.cents(price(id))
			g.str(",")
			g.num(g.intn(500))
		}},
	{"orders", "CREATE TABLE `orders` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `customer_id` int NOT NULL,\n" +
		"  `status` enum('new','paid','shipped','delivered','cancelled','refunded') NOT NULL,\n  `total` decimal(10,2) NOT NULL,\n" +
		"  `currency` char(3) NOT NULL DEFAULT 'EUR',\n  `created_at` datetime NOT NULL,\n  `shipped_at` datetime DEFAULT NULL,\n" +
		"  `carrier` varchar(32) DEFAULT NULL,\n  `tracking` varchar(64) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n" +
		"  KEY `customer_id` (`customer_id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n", 0.22,
		func(g *gen, id int) {
			t := id*37 + g.intn(37)
			g.str(",")
			g.num(g.popular(200000))
			st := g.pick(statuses)
			g.str(",'" + st + "',")
			g.cents(price(g.popular(20000)) * (1 + g.intn(3)))
			g.str(",'EUR',")
			g.date(t)
			if st == "new" || st == "paid" || st == "cancelled" {
				g.str(",NULL,NULL,NULL")
				return
			}
			g.str(",")
			g.date(t + 86400 + g.intn(86400))
			c := g.intn(len(carriers))
			g.str(",'" + carriers[c] + "','" + carriers[c][:2])
			g.num(id*10 + c)
			g.str("FR'")
		}},
	{"order_items", "CREATE TABLE `order_items` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  `order_id` int NOT NULL,\n" +
		"  `product_id` int NOT NULL,\n  `quantity` int NOT NULL,\n  `unit_price` decimal(10,2) NOT NULL,\n" +
		"  `discount` decimal(5,2) NOT NULL DEFAULT '0.00',\n  PRIMARY KEY (`id`),\n  KEY `order_id` (`order_id`)\n" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n", 0.20,
		func(g *gen, id int) {
			p := g.popular(20000)
			g.str(",")
			g.num(id/3 + 1)
			g.str(",")
			g.num(p)
			g.str("," + g.pick(quantities) + ",")
			g.cents(price(p))
			g.str("," + g.pick(discounts))
		}},
	{"audit_log", "CREATE TABLE `audit_log` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  `at` datetime NOT NULL,\n" +
		"  `ip` varchar(45) NOT NULL,\n  `method` varchar(8) NOT NULL,\n  `path` varchar(512) NOT NULL,\n  `status` smallint NOT NULL,\n" +
		"  `user_agent` varchar(512) DEFAULT NULL,\n  `note` text,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n", 0.40,
		func(g *gen, id int) {
			g.str(",")
			g.date(id*3 + g.intn(3))
			c := g.popular(5000) // returning clients
			g.str(",'")
			g.num(10 + c%200)
			g.str(".")
			g.num(c * 7 % 256)
			g.str(".")
			g.num(c * 13 % 256)
			g.str(".")
			g.num(c % 256)
			g.str("','" + g.pick(methods) + "','/" + g.pick(paths) + "/")
			g.num(g.popular(100000))
			g.str("'," + g.pick(httpStatus) + ",'" + agents[c%len(agents)] + "','")
			g.words(3 + g.intn(12))
			g.str("'")
		}},
}

var (
	firstNames = strings.Fields("Marie Jean Pierre Michel Nathalie Isabelle Sophie Philippe Nicolas Catherine Anne Christophe " +
		"Sandrine Stephane Julien Camille Laurent Emilie Thomas Lucas Emma Louise Hugo Jules Chloe Ines Lea Manon Arthur " +
		"Paul Alice Gabriel Raphael Adam Louis Mila Rose Lina Nathan Ethan Sarah Zoe Theo Noah Leo Clara Anna Eva")
	lastNames = strings.Fields("Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel " +
		"Lefebvre Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau Vincent Muller " +
		"Lefevre Faure Andre Mercier Blanc Guerin Boyer Garnier Chevalier Francois Legrand Gauthier Garcia Perrin Robin " +
		"Clement Morin Nicolas Henry Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noel Meyer")
	domains = strings.Fields("example.com example.org mail.example.net shop.example.fr laposte.example " +
		"orange.example free.example gmail.example yahoo.example outlook.example")
	streets = strings.Split("rue de la Paix|avenue Victor Hugo|boulevard Voltaire|rue Pasteur|place de la Republique|"+
		"rue du Moulin|chemin des Vignes|allee des Tilleuls|rue Jean Jaures|impasse des Lilas|quai de Saone", "|")
	cities = strings.Fields("Paris Lyon Marseille Toulouse Nice Nantes Strasbourg Montpellier Bordeaux Lille Rennes " +
		"Reims Grenoble Dijon Angers Nimes Brest Tours Limoges Amiens Metz Besancon Perpignan Orleans Rouen Caen")
	adjectives = strings.Fields("Classic Deluxe Compact Ergonomic Organic Vintage Premium Wireless Smart Portable " +
		"Handmade Rustic Modern Sleek Durable Lightweight Heavy-duty Eco")
	nouns = strings.Fields("Chair Lamp Kettle Backpack Jacket Sneakers Headphones Teapot Blender Notebook Wallet " +
		"Umbrella Blanket Mug Desk Speaker Keyboard Watch Bicycle Tent Knife Pan")
	lorem = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut " +
		"labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea " +
		"commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum eu fugiat nulla pariatur " +
		"excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum " +
		"customer order delivery refund invoice payment address changed by support ticket opened closed escalated " +
		"warehouse stock shipped returned damaged parcel carrier late missing")
	statuses   = strings.Fields("new paid paid shipped shipped delivered delivered delivered cancelled refunded")
	carriers   = strings.Fields("Colissimo Chronopost DHL UPS GLS DPD Mondial-Relay")
	discounts  = strings.Fields("0.00 0.00 0.00 0.00 5.00 10.00 15.00 20.00")
	quantities = strings.Fields("1 1 1 1 1 2 2 3 4 10")
	methods    = strings.Fields("GET GET GET GET POST POST PUT DELETE")
	paths      = strings.Fields("api/orders api/customers api/products cart checkout account/login account/orders search admin/reports")
	httpStatus = strings.Fields("200 200 200 200 200 201 204 301 304 400 401 403 404 500")
	agents     = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
		"curl/7.88.1", "python-requests/2.31.0", "okhttp/4.12.0",
	}
)
